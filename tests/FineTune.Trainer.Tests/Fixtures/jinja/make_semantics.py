#!/usr/bin/python3
"""Renders small Jinja templates that pin down semantics the chat-template fixtures do not reach, and writes
semantics.json: [{name, template, context, expected_output, expected_error_type}].

Run: /usr/bin/python3 make_semantics.py   (Debian python3-jinja2 3.1.2, the environment of ../chat_templates/make_cases.py:
transformers' ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, loopcontrols, its tojson and raise_exception).
"""
import json
import os

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def render(source, context):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source).render(**context)


MSGS = [{"role": "system", "content": "sys"}, {"role": "user", "content": " hi "}, {"role": "assistant", "content": "yo"}]
CASES = [
    # whitespace control
    ("lstrip_only_at_line_start", "a  {% if true %}x{% endif %}\n  {% if true %}y{% endif %}  \nz", {}),
    ("plus_keeps_whitespace", "a\n  {%+ if true %}x{% endif +%}\nb", {}),
    ("minus_strips_newlines", "a  \n\n  {{- 'x' -}}  \n\n b", {}),
    ("comment_trim", "a\n  {# note #}\nb\n{#- strip -#}\n  c", {}),
    ("trailing_newline_dropped_once", "x\n\n", {}),
    ("crlf_normalized", "a\r\nb\rc", {}),
    # scoping
    ("set_in_loop_does_not_leak", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", {}),
    ("set_in_if_leaks", "{% if true %}{% set x = 5 %}{% endif %}{{ x }}", {}),
    ("namespace_counts", "{% set ns = namespace(n=0, seen=false) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }} {{ ns.seen }}", {"messages": MSGS}),
    ("block_set", "{% set greeting %}Hello {{ name }}!{% endset %}[{{ greeting | upper }}]", {"name": "Ann"}),
    ("tuple_set", "{% set a, b = [1, 'two'] %}{{ b }}{{ a }}", {}),
    # loops
    ("loop_vars", "{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", {"messages": MSGS}),
    ("loop_filter_counts_kept", "{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }}{{ '.' if loop.last }}{% endfor %}", {"messages": MSGS}),
    ("loop_else", "{% for x in [] %}x{% else %}empty{% endfor %}", {}),
    ("loop_break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("loop_unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d | items %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": [2, 3]}}),
    ("loop_over_dict_and_string", "{% for k in d %}{{ k }}{% endfor %}|{% for c in 'héllo' %}{{ c }}.{% endfor %}", {"d": {"x": 1, "y": 2}}),
    ("loop_prev_next_cycle", "{% for i in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('a', 'b') }} {% endfor %}", {}),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    # expressions
    ("arithmetic", "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 10 - 2 - 3 }} {{ 4 / 2 }} {{ 2 ** -1 }}", {}),
    ("float_repr", "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 3.0 }} {{ -2.5e-7 }} {{ 123456789.125 }}", {}),
    ("python_str_of_values", "{{ none }} {{ true }} {{ [1, 'a', none, 2.0] }} {{ {'k': 'v', 'n': [1]} }} {{ \"it's\" }} {{ ['it\\'s'] }}", {}),
    ("string_ops", "{{ 'a' ~ 1 ~ none ~ x }} {{ 'ab' * 3 }} {{ 'abc'[1] }} {{ 'abcdef'[1:4] }} {{ 'abcdef'[::-1] }} {{ 'abcdef'[-2:] }} {{ 'a😀b'[1] }} {{ 'a😀b' | length }}", {}),
    ("list_ops", "{{ [1, 2] + [3] }} {{ [1, 2, 3][-1] }} {{ [1, 2, 3, 4][1::2] }} {{ messages[1:] | length }} {{ messages[-1]['role'] }}", {"messages": MSGS}),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' in 'cat' }} {{ 'z' not in ['a'] }} {{ 'k' in {'k': 1} }} {{ 1 == 1.0 }} {{ [1, 2] == [1, 2] }} {{ 'b' > 'a' }}", {}),
    ("boolean_ops_return_operands", "{{ 0 or 'x' }} {{ '' and 'y' }} {{ 'a' and 'b' }} {{ not [] }} {{ none or [] }}", {}),
    ("conditional_expression", "{{ 'yes' if x else 'no' }} {{ 'only' if false }}|{{ 1 if false else 2 if true else 3 }}", {"x": [0]}),
    ("attribute_vs_item", "{{ d.items | length if false else d['items'] }} {{ d.get('missing', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.missing is defined }} {{ 'items' in d }}", {"d": {"items": "ITEMS", "k": 1}}),
    ("undefined_behaviour", "[{{ nothing }}] {{ nothing is defined }} {{ nothing | length }} {{ nothing | default('d') }} {{ none | default('d') }} {{ '' | default('e', true) }} {% for x in nothing %}x{% endfor %}{{ nothing == nothing }}", {}),
    ("is_tests", "{{ 'a' is string }} {{ 1 is number }} {{ true is number }} {{ true is integer }} {{ 1 is integer }} {{ 1.5 is float }} {{ {} is mapping }} {{ 'a' is iterable }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ none is none }} {{ 'x' is equalto 'x' }} {{ 2 is gt 1 }} {{ 'a' is in 'abc' }} {{ 'AB' is upper }}", {}),
    # filters
    ("trim_and_case", "[{{ '  a b \\n' | trim }}] [{{ 'xxaxx' | trim('x') }}] {{ 'hello world' | title }} {{ 'hELLO' | capitalize }} {{ 'Ab' | upper }}{{ 'Ab' | lower }}", {}),
    ("join_map_select", "{{ messages | map(attribute='role') | join(', ') }} | {{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | map('trim') | list }} | {{ messages | rejectattr('role', 'in', ['system', 'user']) | list | length }} | {{ [1, 0, 2] | select | list }} | {{ [1, 2, 3, 4] | reject('odd') | list }} | {{ messages | join('-', attribute='role') }}", {"messages": MSGS}),
    ("map_default", "{{ messages | map(attribute='name', default='anon') | list }}", {"messages": MSGS}),
    ("first_last_list_reverse", "{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ 'abc' | list }} {{ [1, 2] | reverse | list }} {{ 'abc' | reverse }} {{ [] | first is defined }}", {}),
    ("sort_unique_sum_min_max", "{{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} {{ [3, 1, 2] | sort(reverse=true) }} {{ messages | sort(attribute='role') | map(attribute='role') | list }} {{ ['a', 'A', 'b'] | unique | list }} {{ [1, 2, 3] | sum }} {{ [1.5, 2] | sum }} {{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }}", {"messages": MSGS}),
    ("dictsort_items", "{{ {'b': 1, 'a': 2} | dictsort }} {{ {'b': 1, 'a': 2} | dictsort(by='value') }} {{ {'b': 1} | items | list }}", {}),
    ("int_float_round_abs", "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 2.1 | round(0, 'ceil') }} {{ -3 | abs }} {{ '0x1A' | int(0, 16) }}", {}),
    ("replace_and_methods", "{{ 'a-b-c' | replace('-', '+') }} {{ 'a-b-c' | replace('-', '', 1) }} {{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ '--x--'.strip('-') }} {{ 'x'.upper() }} {{ 'a\\nb\\r\\nc'.splitlines() }} {{ ', '.join(['a', 'b']) }} {{ 'banana'.count('an') }} {{ 'banana'.find('n') }} {{ 'abc'.replace('', '.') }}", {}),
    ("tojson_variants", "{{ d | tojson }}\n{{ d | tojson(indent=2) }}\n{{ d | tojson(sort_keys=true) }}\n{{ d | tojson(separators=(',', ':')) }}\n{{ 'é\"\\\\\\n\\t\\u0001' | tojson }}\n{{ 'é😀' | tojson(ensure_ascii=true) }}\n{{ [] | tojson(indent=2) }} {{ {} | tojson(indent=2) }} {{ [1.0, 1e20, none, true] | tojson }}", {"d": {"z": [1, {"y": "ü"}], "a": None, "n": 1.5}}),
    ("indent_filter", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent('>', blank=true) }}", {}),
    ("escape_and_string", "{{ '<a href=\"x\">&\\'' | e }} {{ 5 | string }}{{ none | string }} {{ [1] | string }} {{ 'one two  three' | wordcount }}", {}),
    ("macro", "{% macro tag(name, body='none', close=true) %}<{{ name }}>{{ body }}{% if close %}</{{ name }}>{% endif %}{% endmacro %}{{ tag('a') }}{{ tag('b', 'x') }}{{ tag('c', close=false) }}{{ tag | string | length > 0 }}", {}),
    ("macro_sees_globals", "{% set who = 'world' %}{% macro hi() %}hi {{ who }} {{ bos_token }}{% endmacro %}{{ hi() }}", {"bos_token": "<s>"}),
    ("raise_in_loop", "{% for m in messages %}{% if m.role == 'assistant' %}{{ raise_exception('no assistant: ' ~ loop.index) }}{% endif %}{% endfor %}", {"messages": MSGS}),
    ("string_escapes_in_literals", "{{ 'tab\\there' }}|{{ \"q\\\"uote\" }}|{{ 'u\\u00e9' }}|{{ 'back\\\\slash' }}|{{ 'unknown\\d' }}", {}),
    ("dict_literal_in_output", "{{ {'a': {'b': 1}}['a']['b'] }}{{ {'x': 1}.x }}", {}),
    ("tuple_literals", "{{ (1, 'a') }} {{ () }} {{ (1,) }} {{ [(1, 2)] | tojson }} {% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}", {}),
]
ERROR_CASES = [
    ("undefined_plus", "{{ nothing + 'a' }}", {}),
    ("attribute_of_undefined", "{{ nothing.attr }}", {}),
    ("str_plus_int", "{{ 'a' + 1 }}", {}),
    ("compare_mixed", "{{ 'a' < 1 }}", {}),
    ("list_mutation_refused", "{{ [1].append(2) }}", {}),
]


def main():
    out = []
    for name, source, context in CASES:
        case = {"name": name, "template": source, "context": context, "expected_output": None, "expected_error": None, "expected_error_type": None}
        try:
            case["expected_output"] = render(source, context)
        except jinja2.exceptions.TemplateError as e:
            case["expected_error"], case["expected_error_type"] = str(e), type(e).__name__
        out.append(case)
    for name, source, context in ERROR_CASES:
        case = {"name": name, "template": source, "context": context, "expected_output": None, "expected_error": None, "expected_error_type": None}
        try:
            render(source, context)
            raise SystemExit(f"{name}: expected an error")
        except Exception as e:  # UndefinedError, TypeError, SecurityError
            case["expected_error"], case["expected_error_type"] = str(e), type(e).__name__
        out.append(case)
    with open(os.path.join(HERE, "semantics.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(out, f, ensure_ascii=False, indent=2)
        f.write("\n")
    for c in out:
        print(f"{c['name']:32s} {c['expected_error_type'] or repr(c['expected_output'])[:90]}")
    print(f"wrote {len(out)} cases with jinja2 {jinja2.__version__}")


if __name__ == "__main__":
    main()
