"""Small PromQL helpers shared by the dashboard generator, the static checks
and the integration tests.

metric_names(expr) - the metric names a PromQL expression selects: the
    identifiers that are neither functions, keywords, label names nor
    inside a label matcher, a string or a grouping clause. A lexer, not a
    parser: promtool checks that the expression parses.
substitute(expr, values) - a Grafana query with its variables ($var,
    ${var}, ${var:opt}, [[var]]) replaced by concrete values.
"""

import re

_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[Ii]nf|NaN)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],@:])
""", re.X)

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "offset", "atan2",
    # aggregation operators (followed by a clause or a parenthesis)
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile",
}
# keywords followed by a parenthesised list of label names
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


class LexError(ValueError):
    pass


def tokens(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise LexError("cannot read %r at %d: %r" % (expr, pos, expr[pos:pos + 20]))
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def metric_names(expr):
    """The set of metric names `expr` selects."""
    toks = tokens(expr)
    names = set()
    brace = 0      # inside {...}
    bracket = 0    # inside [...] (durations, subqueries)
    label_list = 0  # paren depth of a by/without/on/... list, 0: none
    paren = 0
    for i, (kind, text) in enumerate(toks):
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "op":
            if text == "{":
                brace += 1
            elif text == "}":
                brace -= 1
            elif text == "[":
                bracket += 1
            elif text == "]":
                bracket -= 1
            elif text == "(":
                paren += 1
            elif text == ")":
                if label_list and paren == label_list:
                    label_list = 0
                paren -= 1
            continue
        if kind != "ident" or brace or bracket or label_list:
            continue
        if text in LABEL_LISTS and nxt == "(":
            label_list = paren + 1
            continue
        if text in KEYWORDS or nxt == "(":
            continue
        names.add(text)
    return names


_VAR = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")


def substitute(expr, values):
    """Replace Grafana variables; a variable not in `values` is an error."""
    def one(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise KeyError("no value for variable $%s in %r" % (name, expr))
        return values[name]
    return _VAR.sub(one, expr)
