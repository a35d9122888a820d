using System.Reflection;
using System.Reflection.Emit;
using Runcible.Core.Diagnostics;

namespace Runcible.Tests.Layering;

/// <summary>
/// The layer order of Runcible.Core (docs/architecture.md): a namespace may use only namespaces of lower layers.
/// Read from the compiled assembly (signatures, attributes, locals and every type, method and field token in the
/// IL), so a fully qualified or partly qualified reference counts as much as a <c>using</c>.
/// </summary>
public class NamespaceLayerTests
{
    private const string Root = "Runcible.Core";

    // Lowest first. A sub-namespace (Registry.Pipeline) belongs to its top-level namespace.
    private static readonly string[][] Layers =
    [
        ["Diagnostics"],
        ["IO"],
        ["Oci"],
        ["Contracts"],
        ["Images", "Layers", "RuntimeSpec", "Registry"],
        ["Host"],
        ["Bundle"],
    ];

    [Fact]
    public void CoreNamespacesFormNoCycle()
    {
        var graph = DependencyGraph(typeof(RuncibleException).Assembly, Root);
        var cycles = Cycles(graph);
        Assert.True(cycles.Count == 0, "Namespace cycles in Runcible.Core:\n" + string.Join("\n", cycles));
    }

    [Fact]
    public void CoreNamespacesUseOnlyLowerLayers()
    {
        var graph = DependencyGraph(typeof(RuncibleException).Assembly, Root);
        var rank = Layers.SelectMany((names, i) => names.Select(name => (name, i))).ToDictionary(p => p.name, p => p.i);
        var violations = new List<string>();
        foreach (var (from, edges) in graph)
        {
            if (!rank.TryGetValue(from, out var fromRank))
            {
                violations.Add($"{from} is in no layer");
                continue;
            }

            foreach (var (to, why) in edges)
            {
                if (!rank.TryGetValue(to, out var toRank) || toRank >= fromRank)
                {
                    violations.Add($"{from} -> {to} ({why})");
                }
            }
        }

        Assert.True(violations.Count == 0, "Dependencies against the layer order:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void TheAnalysisSeesAFullyQualifiedCallInAMethodBody()
    {
        // Probe.Upper calls Probe.Lower by its full name, with no using, in a method body only.
        var graph = DependencyGraph(typeof(NamespaceLayerTests).Assembly, typeof(Probe.Upper.Caller).Namespace![..^".Upper".Length]);
        Assert.Equal<string>(["Lower"], graph["Upper"].Keys);
        Assert.Empty(graph["Lower"]);
    }

    /// <summary>Top-level Core namespace -> the Core namespaces it uses, each with one type that shows why.</summary>
    private static Dictionary<string, Dictionary<string, string>> DependencyGraph(Assembly assembly, string root)
    {
        var graph = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var type in assembly.GetTypes())
        {
            var from = TopNamespace(type, root);
            if (from is null)
            {
                continue;
            }

            var edges = graph.TryGetValue(from, out var e) ? e : graph[from] = new(StringComparer.Ordinal);
            foreach (var used in UsedTypes(type))
            {
                var to = TopNamespace(used, root);
                if (to is not null && to != from)
                {
                    edges.TryAdd(to, $"{type.FullName} uses {used.FullName}");
                }
            }
        }

        return graph;
    }

    private static string? TopNamespace(Type type, string root)
    {
        while (type.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }

        var ns = type.Namespace;
        if (ns == root)
        {
            return "(root)"; // in no layer: a type belongs in one of the layered namespaces
        }

        if (ns is null || !ns.StartsWith(root + ".", StringComparison.Ordinal))
        {
            return null;
        }

        var rest = ns[(root.Length + 1)..];
        var dot = rest.IndexOf('.');
        return dot < 0 ? rest : rest[..dot];
    }

    private const BindingFlags Declared =
        BindingFlags.DeclaredOnly | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;

    private static IEnumerable<Type> UsedTypes(Type type)
    {
        var found = new HashSet<Type>();
        void Add(Type? t)
        {
            if (t is null || !found.Add(t))
            {
                return;
            }

            if (t.HasElementType)
            {
                Add(t.GetElementType());
            }

            if (t.IsGenericType && !t.IsGenericTypeDefinition)
            {
                Add(t.GetGenericTypeDefinition());
                foreach (var argument in t.GetGenericArguments())
                {
                    Add(argument);
                }
            }

            if (t.IsGenericParameter)
            {
                foreach (var constraint in t.GetGenericParameterConstraints())
                {
                    Add(constraint);
                }
            }
        }

        void AddAttributes(IEnumerable<CustomAttributeData> attributes)
        {
            foreach (var attribute in attributes)
            {
                Add(attribute.AttributeType);
                foreach (var argument in attribute.ConstructorArguments.Concat(attribute.NamedArguments.Select(a => a.TypedValue)))
                {
                    Add(argument.ArgumentType);
                    Add(argument.Value as Type);
                }
            }
        }

        void AddSignature(MethodBase method)
        {
            if (method is MethodInfo info)
            {
                Add(info.ReturnType);
            }

            if (method.IsGenericMethod)
            {
                foreach (var argument in method.GetGenericArguments())
                {
                    Add(argument);
                }
            }

            foreach (var parameter in method.GetParameters())
            {
                Add(parameter.ParameterType);
            }
        }

        Add(type.BaseType);
        foreach (var implemented in type.GetInterfaces())
        {
            Add(implemented);
        }

        if (type.IsGenericTypeDefinition)
        {
            foreach (var parameter in type.GetGenericArguments())
            {
                Add(parameter);
            }
        }

        AddAttributes(type.GetCustomAttributesData());
        foreach (var field in type.GetFields(Declared))
        {
            Add(field.FieldType);
            AddAttributes(field.GetCustomAttributesData());
        }

        foreach (var property in type.GetProperties(Declared))
        {
            Add(property.PropertyType);
            AddAttributes(property.GetCustomAttributesData());
        }

        foreach (var evt in type.GetEvents(Declared))
        {
            Add(evt.EventHandlerType);
        }

        var methods = type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared));
        foreach (var method in methods)
        {
            AddAttributes(method.GetCustomAttributesData());
            AddSignature(method);
            foreach (var parameter in method.GetParameters())
            {
                AddAttributes(parameter.GetCustomAttributesData());
            }

            var body = method.GetMethodBody();
            if (body is null)
            {
                continue;
            }

            foreach (var local in body.LocalVariables)
            {
                Add(local.LocalType);
            }

            foreach (var clause in body.ExceptionHandlingClauses)
            {
                if (clause.Flags == ExceptionHandlingClauseOptions.Clause)
                {
                    Add(clause.CatchType);
                }
            }

            foreach (var member in TokensIn(method, body.GetILAsByteArray() ?? []))
            {
                switch (member)
                {
                    case Type t:
                        Add(t);
                        break;
                    case MethodBase m:
                        Add(m.DeclaringType);
                        AddSignature(m);
                        break;
                    case FieldInfo f:
                        Add(f.DeclaringType);
                        Add(f.FieldType);
                        break;
                }
            }
        }

        return found;
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>The members behind every type, method and field token of <paramref name="il"/>.</summary>
    private static IEnumerable<MemberInfo> TokensIn(MethodBase method, byte[] il)
    {
        var typeArguments = method.DeclaringType is { IsGenericType: true } declaring ? declaring.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var position = 0;
        while (position < il.Length)
        {
            short value = il[position++];
            if (value == 0xFE)
            {
                value = unchecked((short)(0xFE00 | il[position++]));
            }

            var opCode = OpCodesByValue[value];
            switch (opCode.OperandType)
            {
                case OperandType.InlineType:
                case OperandType.InlineMethod:
                case OperandType.InlineField:
                case OperandType.InlineTok:
                    var token = BitConverter.ToInt32(il, position);
                    position += 4;
                    yield return method.Module.ResolveMember(token, typeArguments, methodArguments)!;
                    break;
                case OperandType.InlineSwitch:
                    var count = BitConverter.ToInt32(il, position);
                    position += 4 + (4 * count);
                    break;
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget:
                case OperandType.ShortInlineI:
                case OperandType.ShortInlineVar:
                    position += 1;
                    break;
                case OperandType.InlineVar:
                    position += 2;
                    break;
                case OperandType.InlineI8:
                case OperandType.InlineR:
                    position += 8;
                    break;
                default:
                    position += 4;
                    break;
            }
        }
    }

    /// <summary>Every strongly connected component of more than one namespace, as "A -> B -> A".</summary>
    private static List<string> Cycles(Dictionary<string, Dictionary<string, string>> graph)
    {
        // Tarjan's algorithm; the graph has a dozen nodes.
        var index = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var onStack = new HashSet<string>();
        var cycles = new List<string>();
        var next = 0;

        void Visit(string node)
        {
            index[node] = low[node] = next++;
            stack.Push(node);
            onStack.Add(node);
            foreach (var target in graph.TryGetValue(node, out var edges) ? edges.Keys.ToList() : [])
            {
                if (!index.ContainsKey(target))
                {
                    Visit(target);
                    low[node] = Math.Min(low[node], low[target]);
                }
                else if (onStack.Contains(target))
                {
                    low[node] = Math.Min(low[node], index[target]);
                }
            }

            if (low[node] == index[node])
            {
                var component = new List<string>();
                string member;
                do
                {
                    member = stack.Pop();
                    onStack.Remove(member);
                    component.Add(member);
                }
                while (member != node);

                if (component.Count > 1)
                {
                    var members = component.ToHashSet();
                    cycles.Add(string.Join(", ", component.Order(StringComparer.Ordinal)) + ":\n  " + string.Join(
                        "\n  ",
                        component.SelectMany(from => graph[from].Where(e => members.Contains(e.Key)).Select(e => $"{from} -> {e.Key} ({e.Value})"))));
                }
            }
        }

        foreach (var node in graph.Keys.Order(StringComparer.Ordinal))
        {
            if (!index.ContainsKey(node))
            {
                Visit(node);
            }
        }

        return cycles;
    }
}
