using System.Runtime.Serialization;
using System.Text;

namespace Multiprocessing.Serialization;

/// <summary>
/// Raised deep inside a write when a value cannot cross; each enclosing member adds a step on the way out, and the
/// entry point turns it into a <see cref="SerializationException"/> whose message names the path.
/// </summary>
internal sealed class CrossingException(Type type, string reason) : Exception(reason)
{
    private readonly List<string> _steps = [];

    public Type OffendingType { get; } = type;

    public string Reason { get; } = reason;

    public void AddStep(string step) => _steps.Add(step);

    public SerializationException ToPublic(string? root)
    {
        var message = new StringBuilder();
        string subject = _steps.Count > 0 ? _steps[0] : "a value";
        message.Append(subject).Append(" of type ").Append(TypeNames.Display(OffendingType)).Append(' ').Append(Reason);
        if (_steps.Count > 1 || root is not null)
        {
            message.Append(" (path: ");
            if (root is not null)
            {
                message.Append(root);
                if (_steps.Count > 0)
                {
                    message.Append(" → ");
                }
            }

            for (int i = _steps.Count - 1; i >= 0; i--)
            {
                message.Append(_steps[i]);
                if (i > 0)
                {
                    message.Append(" → ");
                }
            }

            message.Append(')');
        }

        return new SerializationException(message.Append('.').ToString(), this);
    }
}
