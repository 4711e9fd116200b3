using System.Text;

namespace Bench.Harness;

/// <summary>Prints rows as a Markdown table (so the output pastes straight into <c>RESULTS.md</c>), then the spreads and notes.</summary>
public static class TablePrinter
{
    /// <summary>Renders <paramref name="rows"/> with <paramref name="notes"/> under a heading.</summary>
    public static string Render(string title, IReadOnlyList<ResultRow> rows, IReadOnlyList<string> notes)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(notes);
        bool goals = rows.Any(r => r.Goal is not null);
        string[] header = goals
            ? ["workload", "CPython", "ours", "ours vs CPython", "goal"]
            : ["workload", "CPython", "ours", "ours vs CPython"];
        List<string[]> cells = [header];
        foreach (ResultRow row in rows)
        {
            string[] line = [row.Workload, row.CPython?.ToString() ?? "—", row.Ours?.ToString() ?? "—", row.Ratio.Length > 0 ? row.Ratio : "—"];
            cells.Add(goals ? [.. line, row.Goal?.ToString() ?? ""] : line);
        }

        int[] widths = Enumerable.Range(0, header.Length).Select(c => cells.Max(line => line[c].Length)).ToArray();
        var text = new StringBuilder();
        text.AppendLine("### " + title).AppendLine();
        for (int i = 0; i < cells.Count; i++)
        {
            text.AppendLine(Line(cells[i], widths));
            if (i == 0)
            {
                text.AppendLine("|" + string.Join("|", widths.Select((w, c) => c == 0 ? new string('-', w + 2) : new string('-', w + 1) + ":")) + "|");
            }
        }

        text.AppendLine();
        foreach (ResultRow row in rows)
        {
            foreach ((string side, Measurement? m) in new[] { ("CPython", row.CPython), ("ours", row.Ours) })
            {
                if (m is { Count: > 0 })
                {
                    text.Append("- ").Append(row.Workload).Append(" — ").Append(side).Append(": ").AppendLine(m.Spread);
                }
            }
        }

        foreach (string note in notes)
        {
            text.AppendLine("- Note: " + note);
        }

        return text.ToString();
    }

    private static string Line(string[] cells, int[] widths)
        => "| " + string.Join(" | ", cells.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))) + " |";
}
