using System.Text;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// Runs a statement tree into a StringBuilder: text and {{ }} output, if, for (child scope per iteration, the
/// <c>loop</c> object, the "if" filter applied first, else when nothing iterated, break/continue), set (plain,
/// unpacking, namespace attribute, block), macros (callables rendering their body in a child of the scope they were
/// defined in), generation blocks (rendered as is). An error without a template line gets the line of the statement
/// that raised it.
/// </summary>
internal static class JinjaRenderer
{
    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    public static void Render(IReadOnlyList<JinjaNode> body, JinjaScope scope, StringBuilder output) => RenderBody(body, scope, output, depth: 0);

    private static Flow RenderBody(IReadOnlyList<JinjaNode> body, JinjaScope scope, StringBuilder output, int depth)
    {
        foreach (JinjaNode node in body)
        {
            Flow flow;
            try
            {
                flow = RenderNode(node, scope, output, depth);
            }
            catch (JinjaException e) when (e.Line == 0 && e.Kind != JinjaErrorKind.Raised)
            {
                throw e.AtLine(node.Line);
            }
            if (flow != Flow.Normal)
                return flow;
        }
        return Flow.Normal;
    }

    private static Flow RenderNode(JinjaNode node, JinjaScope scope, StringBuilder output, int depth)
    {
        switch (node)
        {
            case TextNode text:
                output.Append(text.Text);
                return Flow.Normal;
            case OutputNode o:
                output.Append(JinjaValues.ToStr(JinjaEvaluator.Evaluate(o.Value, scope)));
                return Flow.Normal;
            case IfNode i:
                foreach (var (test, branch) in i.Branches)
                {
                    if (JinjaValues.IsTruthy(JinjaEvaluator.Evaluate(test, scope)))
                        return RenderBody(branch, scope, output, depth);
                }
                return i.Otherwise is null ? Flow.Normal : RenderBody(i.Otherwise, scope, output, depth);
            case ForNode f:
                RenderFor(f, scope, output, depth);
                return Flow.Normal;
            case SetNode s:
                Assign(s, scope, JinjaEvaluator.Evaluate(s.Value, scope));
                return Flow.Normal;
            case SetBlockNode b:
                var captured = new StringBuilder();
                RenderBody(b.Body, scope, captured, depth);
                scope.Set(b.Target, captured.ToString());
                return Flow.Normal;
            case MacroNode m:
                scope.Set(m.Name, Macro(m, scope, depth));
                return Flow.Normal;
            case LoopControlNode c:
                if (depth == 0)
                    throw JinjaException.Syntax($"'{{% {(c.IsBreak ? "break" : "continue")} %}}' outside a for loop", c.Line);
                return c.IsBreak ? Flow.Break : Flow.Continue;
            case GenerationNode g:
                return RenderBody(g.Body, scope, output, depth);
            default:
                throw new InvalidOperationException($"unknown statement node {node.GetType().Name}");
        }
    }

    private static void RenderFor(ForNode f, JinjaScope scope, StringBuilder output, int depth)
    {
        List<object?> items = JinjaValues.Iterate(JinjaEvaluator.Evaluate(f.Iterable, scope));
        if (f.Filter is not null)
        {
            items = items.Where(item =>
            {
                var probe = new JinjaScope(scope);
                Bind(f.Targets, item, probe);
                return JinjaValues.IsTruthy(JinjaEvaluator.Evaluate(f.Filter, probe));
            }).ToList();
        }
        var loop = new JinjaLoop(items, depth + 1);
        for (int i = 0; i < items.Count; i++)
        {
            var iteration = new JinjaScope(scope);
            Bind(f.Targets, items[i], iteration);
            loop.Index0 = i;
            iteration.Set("loop", loop);
            if (RenderBody(f.Body, iteration, output, depth + 1) == Flow.Break)
                break;
        }
        if (items.Count == 0 && f.Otherwise is not null)
            RenderBody(f.Otherwise, new JinjaScope(scope), output, depth);
    }

    private static void Bind(IReadOnlyList<string> targets, object? value, JinjaScope scope)
    {
        if (targets.Count == 1)
        {
            scope.Set(targets[0], value);
            return;
        }
        List<object?> parts = JinjaValues.Iterate(value);
        if (parts.Count != targets.Count)
            throw JinjaException.Runtime($"cannot unpack {parts.Count} value(s) into {targets.Count} names");
        for (int i = 0; i < targets.Count; i++)
            scope.Set(targets[i], parts[i]);
    }

    private static void Assign(SetNode s, JinjaScope scope, object? value)
    {
        if (s.Attribute is null)
        {
            Bind(s.Targets, value, scope);
            return;
        }
        if (scope.Lookup(s.Targets[0]) is not JinjaNamespace ns)
            throw JinjaException.Runtime($"cannot assign attribute '{s.Attribute}' on '{s.Targets[0]}', which is not a namespace()");
        ns.Attributes[s.Attribute] = value;
    }

    private static JinjaCallable Macro(MacroNode m, JinjaScope definedIn, int depth) => new(m.Name, (positional, keywords) =>
    {
        if (positional.Count > m.Parameters.Count)
            throw JinjaException.Runtime($"macro '{m.Name}' takes {m.Parameters.Count} argument(s), not {positional.Count}");
        var call = new JinjaScope(definedIn);
        for (int i = 0; i < m.Parameters.Count; i++)
        {
            var (name, defaultValue) = m.Parameters[i];
            object? value = i < positional.Count ? positional[i]
                : keywords.TryGetValue(name, out object? given) ? given
                : defaultValue is not null ? JinjaEvaluator.Evaluate(defaultValue, call)
                : new JinjaUndefined($"parameter '{name}' was not provided");
            call.Set(name, value);
        }
        string? unknown = keywords.Keys.FirstOrDefault(k => m.Parameters.All(p => p.Name != k));
        if (unknown is not null)
            throw JinjaException.Runtime($"macro '{m.Name}' takes no keyword argument '{unknown}'");
        var output = new StringBuilder();
        RenderBody(m.Body, call, output, depth);
        return output.ToString();
    });
}
