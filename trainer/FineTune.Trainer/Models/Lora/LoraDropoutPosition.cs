namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// Where in training a forward pass runs: the optimizer step being computed (0-based) and the micro-batch within
/// it (with data-parallel ranks: rank * gradient_accumulation_steps + local index, so ranks draw different masks).
/// Every LoRA dropout mask is a function of this, the training seed and the projection, so the recompute in
/// backward redraws the forward's masks and a resumed run (whose step comes from its checkpoint) draws the same
/// masks as one never stopped: no generator state exists to be saved.
/// </summary>
public readonly record struct LoraDropoutPosition(long Step, int MicroBatch);
