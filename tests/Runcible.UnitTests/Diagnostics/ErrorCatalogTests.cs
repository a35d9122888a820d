using System.Reflection;
using System.Text.RegularExpressions;
using Runcible.Core.Diagnostics;

namespace Runcible.Tests.Diagnostics;

public class ErrorCatalogTests
{
    private static IReadOnlyList<(string Field, ErrorDescriptor Error)> AllErrors() =>
        typeof(RuncibleErrors)
            .GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(ErrorDescriptor))
            .Select(f => (f.Name, (ErrorDescriptor)f.GetValue(null)!))
            .ToList();

    [Fact]
    public void CodesAreWellFormedAndUnique()
    {
        var errors = AllErrors();
        Assert.NotEmpty(errors);
        foreach (var (field, error) in errors)
        {
            Assert.Matches("^RUNCIBLE[1-59][0-9]{3}$", error.Code);
            Assert.False(string.IsNullOrWhiteSpace(error.MessageFormat), field);
        }

        var duplicates = errors.GroupBy(e => e.Error.Code).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(duplicates);
    }

    [Fact]
    public void EveryCodeIsDocumentedAndEveryDocumentedCodeExists()
    {
        var doc = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "errors.md"));
        var documented = Regex.Matches(doc, @"^\|\s*(RUNCIBLE\d{4})\s*\|", RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value)
            .ToHashSet();
        var declared = AllErrors().Select(e => e.Error.Code).ToHashSet();
        Assert.Empty(declared.Except(documented));
        Assert.Empty(documented.Except(declared));
    }

    [Fact]
    public void MessageTemplatesFormatWithoutThrowing()
    {
        foreach (var (field, error) in AllErrors())
        {
            var placeholders = Regex.Matches(error.MessageFormat, @"\{(\d+)").Select(m => int.Parse(m.Groups[1].Value)).DefaultIfEmpty(-1).Max();
            var args = Enumerable.Range(0, placeholders + 1).Select(i => (object?)$"arg{i}").ToArray();
            var message = error.Format(args);
            Assert.False(string.IsNullOrWhiteSpace(message), field);
        }
    }
}
