using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;

namespace Multiprocessing.Serialization;

/// <summary>
/// Finds which closure fields a lambda reads. C# puts every variable captured in one scope into one closure object,
/// so a lambda also drags along its siblings' captures; a sibling's value that cannot cross is skipped instead of
/// failing, as long as no lambda being sent reads it.
/// </summary>
internal static class ClosureAnalysis
{
    private static readonly ConcurrentDictionary<MethodInfo, HashSet<(Module, int)>> s_used = new();
    private static readonly Dictionary<short, OpCode> s_opcodes = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>Whether <paramref name="type"/> is a compiler-generated closure class.</summary>
    /// <remarks>By name alone: C# code cannot declare a name with angle brackets, and reading attributes costs a cold child a millisecond.</remarks>
    public static bool IsClosure(Type type) => type.Name.StartsWith("<>c", StringComparison.Ordinal);

    /// <summary>Fields read or written by <paramref name="method"/> and by the compiler-generated methods it creates delegates to or calls; null if its body cannot be read.</summary>
    public static HashSet<(Module, int)>? UsedFields(MethodInfo method)
    {
        if (s_used.TryGetValue(method, out HashSet<(Module, int)>? cached))
        {
            return cached;
        }

        var fields = new HashSet<(Module, int)>();
        var visited = new HashSet<MethodBase>();
        if (!Scan(method, fields, visited))
        {
            return null;
        }

        return s_used.GetOrAdd(method, fields);
    }

    private static bool Scan(MethodBase method, HashSet<(Module, int)> fields, HashSet<MethodBase> visited)
    {
        if (!visited.Add(method))
        {
            return true;
        }

        byte[]? il;
        try
        {
            il = method.GetMethodBody()?.GetILAsByteArray();
        }
        catch (Exception ex) when (ex is InvalidOperationException or NotSupportedException)
        {
            return false;
        }

        if (il is null)
        {
            return false;
        }

        Type[]? typeArguments = method.DeclaringType?.IsGenericType == true ? method.DeclaringType.GetGenericArguments() : null;
        Type[]? methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int position = 0;
        while (position < il.Length)
        {
            short value = il[position++];
            if (value == 0xFE)
            {
                if (position >= il.Length)
                {
                    return false;
                }

                value = (short)(0xFE00 | il[position++]);
            }

            if (!s_opcodes.TryGetValue(value, out OpCode opcode))
            {
                return false;
            }

            int operandStart = position;
            position += OperandSize(opcode.OperandType, il, position);
            if (opcode.OperandType is OperandType.InlineField or OperandType.InlineMethod && operandStart + 4 <= il.Length)
            {
                int token = BitConverter.ToInt32(il, operandStart);
                try
                {
                    if (opcode.OperandType == OperandType.InlineField)
                    {
                        if (method.Module.ResolveField(token, typeArguments, methodArguments) is { } field)
                        {
                            fields.Add(Key(field));
                        }
                    }
                    else if (method.Module.ResolveMethod(token, typeArguments, methodArguments) is { } callee
                        && callee.DeclaringType is { } owner && (IsClosure(owner) || callee.Name.StartsWith('<')))
                    {
                        if (!Scan(callee, fields, visited))
                        {
                            return false;
                        }
                    }
                }
                catch (ArgumentException)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Identifies a field the same way whether it was found on a generic closure's open or closed type.</summary>
    public static (Module, int) Key(FieldInfo field) => (field.Module, field.MetadataToken);

    private static int OperandSize(OperandType type, byte[] il, int position) => type switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, position)),
        _ => 4,
    };
}
