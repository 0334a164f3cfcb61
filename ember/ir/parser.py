"""Read the IR text format back into a `Graph` (the inverse of `ember.ir.printer`).

    graph @mlp(%x: f32[512,784], %w: f32[128,784]) -> (f32[512,128]) {
      %0: f32[784,128] = permute(%w) {dims=[1,0]}                 # model.py:12
      %1: f32[512,128] = matmul(%x, %0)                           # model.py:12
      return %1
    }

A small hand-written tokenizer turns the text into tokens (with their line numbers) and a
recursive-descent parser reads the grammar above. Nodes are rebuilt with `Graph.add`, so each
primitive's shape rule re-derives the output type, which must equal the type written on the
line. List attributes become tuples; ``# file:line`` comments become `SourceLoc`s. Every
problem raises `GraphError` with op ``parse`` and a message that names the text line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from . import dtypes as D
from .errors import EmberError, GraphError, SourceLoc
from .graph import Graph, Value
from .ops import PRIMITIVES
from .types import TensorType

__all__ = ["parse_graph"]

_PUNCT = "(){}[],=:"
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_AT_NAME = re.compile(r"[A-Za-z0-9_.:\-]*")
_NUMBER = re.compile(r"(?:-inf|-?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)(?![A-Za-z0-9_.])")
_LITERAL_WORDS = {"true": True, "false": False, "inf": math.inf, "nan": math.nan}


class _Tok(NamedTuple):
    """A token. ``kind`` is the punctuation itself, or 'name', 'value' (``%x``), 'at' (``@x``),
    'number', 'string', 'comment', 'newline' or 'eof'; ``text`` is its decoded text."""

    kind: str
    text: str
    line: int

    def show(self) -> str:
        if self.kind in ("newline", "eof"):
            return "end of line" if self.kind == "newline" else "end of text"
        if self.kind == "string":
            return "string " + repr(self.text)
        prefix = {"value": "%", "at": "@", "comment": "#"}.get(self.kind, "")
        return repr(prefix + self.text)


def _error(line: int, detail: str) -> GraphError:
    return GraphError("parse", f"line {line}: {detail}")


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos, line, n = 0, 1, len(text)
    while pos < n:
        c = text[pos]
        if c == "\n":
            toks.append(_Tok("newline", "\n", line))
            line += 1
            pos += 1
        elif c in " \t\r":
            pos += 1
        elif c == "#":
            end = text.find("\n", pos)
            end = n if end < 0 else end
            toks.append(_Tok("comment", text[pos + 1 : end], line))
            pos = end
        elif c == "-" and text.startswith("->", pos):
            toks.append(_Tok("->", "->", line))
            pos += 2
        elif c in _PUNCT:
            toks.append(_Tok(c, c, line))
            pos += 1
        elif c in "%@":
            m = (_NAME_CHARS if c == "%" else _AT_NAME).match(text, pos + 1)
            if m is None:  # an '@' name may be empty, a '%' name may not
                raise _error(line, f"expected a name after {c!r}")
            toks.append(_Tok("value" if c == "%" else "at", m.group(), line))
            pos = m.end()
        elif c == '"':
            pos, line = _string(text, pos, line, toks)
        elif (m := _NUMBER.match(text, pos)) is not None:
            toks.append(_Tok("number", m.group(), line))
            pos = m.end()
        elif (m := _IDENT.match(text, pos)) is not None:
            toks.append(_Tok("name", m.group(), line))
            pos = m.end()
        else:
            raise _error(line, f"unexpected character {c!r}")
    toks.append(_Tok("eof", "", line))
    return toks


def _string(text: str, pos: int, line: int, toks: list[_Tok]) -> tuple[int, int]:
    """Read a double-quoted string starting at ``pos``; a backslash escapes the next char."""
    start_line, chars, pos = line, [], pos + 1
    while pos < len(text):
        c = text[pos]
        if c == '"':
            toks.append(_Tok("string", "".join(chars), start_line))
            return pos + 1, line
        if c == "\\":
            if pos + 1 >= len(text):
                break
            pos += 1
            c = text[pos]
        if c == "\n":
            line += 1
        chars.append(c)
        pos += 1
    raise _error(start_line, "unterminated string")


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.values: dict[str, Value] = {}
        self.graph = Graph()

    # -- token helpers -------------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def expect(self, kind: str, what: str, text: str | None = None) -> _Tok:
        if not self.at(kind, text):
            raise _error(self.tok.line, f"expected {what}, found {self.tok.show()}")
        return self.next()

    def items(self, item: Callable[[], Any], close: str) -> list[Any]:
        """``item (',' item)*`` up to (not including) the token ``close``; maybe empty."""
        out: list[Any] = []
        if not self.at(close):
            out.append(item())
            while self.at(","):
                self.next()
                out.append(item())
        return out

    def skip_blank_lines(self) -> None:
        while self.at("newline"):
            self.next()

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> Graph:
        self.skip_blank_lines()
        self.expect("name", "'graph'", "graph")
        self.graph.name = self.expect("at", "'@name' after 'graph'").text
        self.expect("(", "'(' after the graph name")
        self.items(self.param, ")")
        self.expect(")", "')' after graph inputs")
        self.expect("->", "'->' after graph inputs")
        self.expect("(", "'(' before result types")
        results = self.items(self.type, ")")
        self.expect(")", "')' after result types")
        self.expect("{", "'{' after result types")
        self.expect("newline", "end of line after '{'")
        self.skip_blank_lines()
        while not self.at("name", "return"):
            if not self.at("value"):
                raise _error(self.tok.line, f"expected a node or 'return', found {self.tok.show()}")
            self.node()
            self.skip_blank_lines()
        self.ret(results)
        self.skip_blank_lines()
        self.expect("}", "'}' after 'return'")
        self.skip_blank_lines()
        self.expect("eof", "end of text after '}'")
        return self.graph

    def param(self) -> None:
        tok = self.expect("value", "'%name' of a graph input")
        self.expect(":", f"':' after '%{tok.text}'")
        self.define(tok, self.graph.add_input(self.type(), tok.text))

    def define(self, tok: _Tok, value: Value) -> None:
        if tok.text in self.values:
            raise _error(tok.line, f"'%{tok.text}' is defined twice")
        self.values[tok.text] = value

    def type(self) -> TensorType:
        tok = self.expect("name", "a dtype such as 'f32'")
        try:
            dtype = D.from_name(tok.text)
        except TypeError:
            raise _error(tok.line, f"expected a dtype such as 'f32', found {tok.show()}") from None
        self.expect("[", f"'[' after dtype '{tok.text}'")
        shape = self.items(self.dim, "]")
        self.expect("]", "']' after shape")
        device = "cpu"
        if self.at("at"):
            device = self.next().text
        return TensorType(tuple(shape), dtype, device)

    def dim(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdecimal():
            raise _error(tok.line, f"expected a dimension size, found {tok.show()}")
        self.next()
        return int(tok.text)

    def node(self) -> None:
        name_tok = self.next()
        line = name_tok.line
        self.expect(":", f"':' after '%{name_tok.text}'")
        declared = self.type()
        self.expect("=", "'=' after the node type")
        op_tok = self.expect("name", "an op name")
        if op_tok.text not in PRIMITIVES:
            raise _error(line, f"unknown op {op_tok.text!r}")
        self.expect("(", f"'(' after op name '{op_tok.text}'")
        operands = self.items(self.operand, ")")
        self.expect(")", "')' after operands")
        attrs = self.attrs() if self.at("{") else {}
        loc = self.comment() if self.at("comment") else None
        self.expect("newline", "end of line after the node")
        if name_tok.text in self.values:
            raise _error(line, f"'%{name_tok.text}' is defined twice")
        try:
            value = self.graph.add(op_tok.text, operands, attrs, loc)
        except EmberError as e:
            raise _error(line, f"invalid node: {e}") from e
        if value.type != declared:
            raise _error(
                line,
                f"'%{name_tok.text}' is declared as {declared} but "
                f"{op_tok.text} derives {value.type}",
            )
        self.define(name_tok, value)

    def operand(self) -> Value | bool | int | float:
        tok = self.tok
        if tok.kind == "value":
            self.next()
            if tok.text not in self.values:
                raise _error(tok.line, f"'%{tok.text}' is not defined")
            return self.values[tok.text]
        return self.literal("an operand ('%name' or a literal)")

    def literal(self, what: str) -> bool | int | float:
        tok = self.tok
        if tok.kind == "number":
            self.next()
            text = tok.text
            if text.lstrip("-").isdecimal():
                return int(text)
            return float(text)
        if tok.kind == "name" and tok.text in _LITERAL_WORDS:
            self.next()
            return _LITERAL_WORDS[tok.text]
        raise _error(tok.line, f"expected {what}, found {tok.show()}")

    def attrs(self) -> dict[str, Any]:
        self.next()  # '{'
        attrs: dict[str, Any] = {}
        while not self.at("}"):
            if attrs:
                self.expect(",", "',' or '}' after an attribute")
            key = self.expect("name", "an attribute name")
            if key.text in attrs:
                raise _error(key.line, f"attribute {key.text!r} is given twice")
            self.expect("=", f"'=' after attribute name '{key.text}'")
            attrs[key.text] = self.attr_value()
        self.next()  # '}'
        return attrs

    def attr_value(self) -> Any:
        tok = self.tok
        if tok.kind == "[":
            self.next()
            items = self.items(self.attr_value, "]")
            self.expect("]", "',' or ']' in a list attribute")
            return tuple(items)
        if tok.kind == "string":
            self.next()
            return tok.text
        if tok.kind == "name" and tok.text not in _LITERAL_WORDS:
            try:
                dtype = D.from_name(tok.text)
            except TypeError:
                raise _error(tok.line, f"expected an attribute value, found {tok.show()}") from None
            self.next()
            return dtype
        return self.literal("an attribute value")

    def comment(self) -> SourceLoc:
        tok = self.next()
        text = tok.text[1:] if tok.text.startswith(" ") else tok.text
        file, colon, line = text.rstrip("\r").rpartition(":")
        if not colon or not line.isdecimal():
            raise _error(tok.line, f"expected '# file:line' after the node, found {tok.show()}")
        return SourceLoc(file, int(line))

    def ret(self, results: list[TensorType]) -> None:
        tok = self.next()  # 'return'
        outputs = self.items(self.ret_value, "newline")
        self.expect("newline", "end of line after the returned values")
        got = [v.type for v in outputs]
        if got != results:
            raise _error(
                tok.line,
                f"returns ({', '.join(map(str, got))}) but the header declares "
                f"({', '.join(map(str, results))})",
            )
        self.graph.set_outputs(outputs)

    def ret_value(self) -> Value:
        tok = self.expect("value", "a '%name' to return")
        if tok.text not in self.values:
            raise _error(tok.line, f"'%{tok.text}' is not defined")
        return self.values[tok.text]


def parse_graph(text: str) -> Graph:
    """Parse the IR text that `format_graph` writes back into a `Graph`.

    Raises `GraphError` (op ``parse``) naming the line for malformed text, undefined or
    redefined values, unknown ops, and node types that differ from what the op derives.
    """
    return _Parser(text).parse()
