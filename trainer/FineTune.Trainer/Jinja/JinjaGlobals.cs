using System.Globalization;
using System.Text;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// The functions every chat template can call, as transformers provides them: raise_exception(message) (the
/// template refuses the input), strftime_now(format) (the render's clock), and Jinja's namespace(), range() and dict().
/// </summary>
internal static class JinjaGlobals
{
    /// <summary>Jinja's sandbox limit on range(): a template cannot build a longer list.</summary>
    private const int MaxRange = 100_000;

    public static void AddTo(JinjaScope scope, DateTime now)
    {
        scope.Set("raise_exception", new JinjaCallable("raise_exception", (args, _) =>
            throw JinjaException.Raised(args.Count > 0 ? JinjaValues.ToStr(args[0]) : "")));
        scope.Set("strftime_now", new JinjaCallable("strftime_now", (args, _) =>
            StrFTime(now, args.Count > 0 ? JinjaValues.ToStr(args[0]) : "")));
        scope.Set("namespace", new JinjaCallable("namespace", (args, keywords) =>
        {
            var ns = new JinjaNamespace();
            foreach (object? arg in args)
            {
                if (arg is not JinjaDict dict)
                    throw JinjaException.Runtime("namespace() takes keyword arguments or a dict");
                foreach (var (key, value) in dict)
                    ns.Attributes[JinjaValues.ToStr(key)] = value;
            }
            foreach (var (key, value) in keywords)
                ns.Attributes[key] = value;
            return ns;
        }));
        scope.Set("dict", new JinjaCallable("dict", (args, keywords) => args.Count > 0
            ? throw JinjaException.Unsupported("dict() with positional arguments")
            : JinjaValues.ToDict(keywords)));
        scope.Set("range", new JinjaCallable("range", (args, _) => Range(args)));
        foreach (string name in new[] { "lipsum", "cycler", "joiner" })
            scope.Set(name, new JinjaCallable(name, (_, _) => throw JinjaException.Unsupported($"the global function '{name}'")));
    }

    private static List<object?> Range(IReadOnlyList<object?> args)
    {
        long Arg(int i) => args[i] is long l ? l : args[i] is bool b ? (b ? 1 : 0)
            : throw JinjaException.Runtime($"range() needs integers, not {JinjaValues.TypeName(args[i])}");
        (long start, long stop, long step) = args.Count switch
        {
            1 => (0, Arg(0), 1),
            2 => (Arg(0), Arg(1), 1),
            3 => (Arg(0), Arg(1), Arg(2)),
            _ => throw JinjaException.Runtime($"range() takes 1 to 3 arguments, not {args.Count}"),
        };
        if (step == 0)
            throw JinjaException.Runtime("range() arg 3 must not be zero");
        var items = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (items.Count == MaxRange)
                throw JinjaException.Runtime($"range() is limited to {MaxRange} items in a template");
            items.Add(i);
        }
        return items;
    }

    /// <summary>Python's strftime for the directives templates use (%d %m %Y %y %b %B %a %A %H %I %M %S %p %j %%).</summary>
    public static string StrFTime(DateTime t, string format)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char d = format[++i];
            sb.Append(d switch
            {
                'd' => t.Day.ToString("00", CultureInfo.InvariantCulture),
                'm' => t.Month.ToString("00", CultureInfo.InvariantCulture),
                'Y' => t.Year.ToString("0000", CultureInfo.InvariantCulture),
                'y' => (t.Year % 100).ToString("00", CultureInfo.InvariantCulture),
                'b' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedMonthName(t.Month),
                'B' => CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(t.Month),
                'a' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedDayName(t.DayOfWeek),
                'A' => CultureInfo.InvariantCulture.DateTimeFormat.GetDayName(t.DayOfWeek),
                'H' => t.Hour.ToString("00", CultureInfo.InvariantCulture),
                'I' => ((t.Hour + 11) % 12 + 1).ToString("00", CultureInfo.InvariantCulture),
                'M' => t.Minute.ToString("00", CultureInfo.InvariantCulture),
                'S' => t.Second.ToString("00", CultureInfo.InvariantCulture),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => t.DayOfYear.ToString("000", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => throw JinjaException.Unsupported($"the strftime directive '%{d}'"),
            });
        }
        return sb.ToString();
    }
}
