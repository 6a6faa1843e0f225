"""Regenerates the expected outputs in this folder with Python jinja2 3.1, configured as Hugging
Face transformers' apply_chat_template configures it. Usage: python3 generate.py (from this folder)."""
import json
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Generation(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime(2026, 1, 15).strftime(fmt)
    return env


def result(render):
    try:
        return {"output": render()}
    except Exception as e:  # the Java side only has to fail too
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    env = environment()
    snippets = json.load(open("snippets.json", encoding="utf-8"))
    for s in snippets:
        s.pop("output", None)
        s.pop("error", None)
        s.update(result(lambda: env.from_string(s["template"]).render(**snippets_context())))
    json.dump(snippets, open("snippets.json", "w", encoding="utf-8"), ensure_ascii=False, indent=1)

    conv = json.load(open("conversations.json", encoding="utf-8"))
    for t in conv["templates"]:
        tpl = env.from_string(open(t["file"], encoding="utf-8").read())
        t["results"] = [result(lambda c=c: tpl.render(messages=c["messages"], tools=c.get("tools"), documents=None,
                                                       add_generation_prompt=c["add_generation_prompt"],
                                                       **t["special_tokens"], **c.get("kwargs", {})))
                        for c in conv["cases"]]
    json.dump(conv, open("conversations.json", "w", encoding="utf-8"), ensure_ascii=False, indent=1)


def snippets_context():
    return json.load(open("snippets-context.json", encoding="utf-8"))


if __name__ == "__main__":
    main()
