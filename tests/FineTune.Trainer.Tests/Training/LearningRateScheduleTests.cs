using FineTune.Trainer.Training;
using Xunit;

namespace FineTune.Trainer.Tests.Training;

public class LearningRateScheduleTests
{
    [Fact]
    public void WarmupIsLinearFromZero()
    {
        var schedule = new LearningRateSchedule(ScheduleKind.Cosine, peakLr: 1e-3, warmupSteps: 10, totalSteps: 110);
        Assert.Equal(0.0, schedule.At(0));
        Assert.Equal(5e-4, schedule.At(5), 15);
        Assert.Equal(1e-3, schedule.At(10), 15);
    }

    [Fact]
    public void CosineHitsHalfAtMidpointAndMinAtEnd()
    {
        var schedule = new LearningRateSchedule(ScheduleKind.Cosine, 1e-3, 10, 110, minLrRatio: 0.1);
        // progress 0.5 -> multiplier 0.5 -> 0.1 + 0.9*0.5 = 0.55
        Assert.Equal(0.55e-3, schedule.At(60), 15);
        Assert.Equal(1e-4, schedule.At(110), 15);
        // progress 0.25 -> 0.5*(1+cos(pi/4)) = 0.8535533905932737
        Assert.Equal(1e-3 * (0.1 + 0.9 * 0.8535533905932737), schedule.At(35), 15);
    }

    [Fact]
    public void LinearAndConstant()
    {
        var linear = new LearningRateSchedule(ScheduleKind.Linear, 2.0, 0, 100);
        Assert.Equal(2.0, linear.At(0));
        Assert.Equal(1.5, linear.At(25), 12);
        Assert.Equal(0.0, linear.At(100), 12);
        Assert.Equal(0.0, linear.At(500), 12);
        var constant = new LearningRateSchedule(ScheduleKind.Constant, 3e-4, 4, 100);
        Assert.Equal(1.5e-4, constant.At(2), 15);
        Assert.Equal(3e-4, constant.At(99));
    }
}
