namespace FineTune.Torch;

/// <summary>Kinds of compute device. The numeric values are the shim's device type codes (shim.h).</summary>
public enum DeviceType
{
    Cpu = 0,
    Cuda = 1,
}
