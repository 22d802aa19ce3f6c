/* test_jinja.c — the Jinja interpreter (src/core/jinja.c): language features with outputs checked
 * against Python's Jinja2 in transformers' environment, and hostile templates and contexts that must
 * fail cleanly (limits on steps, depth, output, range; bad syntax; bad JSON) instead of crashing or
 * hanging. The byte-for-byte comparison on real chat templates is tests/template.test.mjs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

static int failures;

/* renders; returns the output (malloc'ed) or NULL with the error in err */
static char *run(const char *tpl, const char *ctx, char *err, size_t errcap) {
    jinja_tmpl *t;
    if (jinja_parse(tpl, strlen(tpl), &t, err, errcap) != 0) return NULL;
    char *out = NULL;
    int rc = jinja_render_at(t, ctx ? ctx : "{}", 1721980800, &out, NULL, err, errcap);
    jinja_free(t);
    return rc == 0 ? out : NULL;
}

static void ok(const char *tpl, const char *ctx, const char *want) {
    char err[512];
    char *got = run(tpl, ctx, err, sizeof err);
    if (!got) {
        printf("FAIL %s\n  error: %s\n", tpl, err);
        failures++;
    } else if (strcmp(got, want) != 0) {
        printf("FAIL %s\n  want: [%s]\n  got:  [%s]\n", tpl, want, got);
        failures++;
    }
    free(got);
}

static void fails(const char *tpl, const char *ctx, const char *needle) {
    char err[512];
    char *got = run(tpl, ctx, err, sizeof err);
    if (got) {
        printf("FAIL %s\n  should fail, rendered [%.80s]\n", tpl, got);
        failures++;
        free(got);
    } else if (needle && !strstr(err, needle)) {
        printf("FAIL %s\n  error [%s] lacks [%s]\n", tpl, err, needle);
        failures++;
    }
}

int main(void) {
    const char *msgs = "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\" hé \"},"
                       "{\"role\":\"assistant\",\"content\":\"A\"}],\"n\":3,\"f\":1.5,\"t\":true,\"z\":null,"
                       "\"d\":{\"b\":1,\"a\":[1,2.0,\"x\"]}}";
    /* output, literals, whitespace control, trim_blocks / lstrip_blocks */
    ok("a{{ 1 }}b{# c #}d", NULL, "a1bd");
    ok("{{ 'x' ~ 1 ~ none ~ true }}|{{ 1.0 }}|{{ 1e20 }}|{{ 0.1 + 0.2 }}|{{ 10 / 4 }}|{{ 7 // 2 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}",
       NULL, "x1NoneTrue|1.0|1e+20|0.30000000000000004|2.5|3|2|1024");
    ok("  {% if true %}\n  x\n  {% endif %}\nend\n", NULL, "  x\nend");
    ok("a  {{- ' b ' -}}  c", NULL, "a b c");
    ok("a\n  {%+ if true %}x{% endif %}", NULL, "a\n  x");
    ok("{{ [1, 'a', none, (1,)] }}{{ {'k': 'v'} }}", NULL, "[1, 'a', None, (1,)]{'k': 'v'}");
    ok("{{ \"it's\" }}{{ ['it\\'s'] }}{{ 'a\\tb\\u00e9\\n' }}", NULL, "it's[\"it's\"]a\tbé\n");
    /* variables, attributes, subscripts, slices */
    ok("{{ messages[0].role }}{{ messages[-1]['content'] }}{{ messages|length }}{{ d.a[2] }}{{ d['b'] }}", msgs, "systemA3x1");
    ok("{{ messages[1].content[1:] }}|{{ 'abcdef'[::-1] }}|{{ 'héllo'[1] }}|{{ [1,2,3,4][1:3] }}|{{ 'abc'[-2:] }}", msgs,
       "hé |fedcba|é|[2, 3]|bc");
    ok("{{ missing }}|{{ missing is defined }}|{{ d.nope is defined }}|{{ z is none }}|{{ messages[9] is defined }}", msgs,
       "|False|False|True|False");
    /* control flow, loops, scoping */
    ok("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}",
       msgs, "10TrueFalse3 21FalseFalse3 32FalseTrue3 ");
    ok("{% for m in messages if m.role != 'system' %}{{ loop.index }}{{ m.role }}{% else %}none{% endfor %}", msgs,
       "1user2assistant");
    ok("{% for x in [] %}x{% else %}empty{% endfor %}", NULL, "empty");
    ok("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", msgs, "b=1;a=[1, 2.0, 'x'];");
    ok("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
       NULL, "013");
    ok("{% set x = 1 %}{% for i in range(3) %}{{ x }}{% set x = i %}{{ x }},{% endfor %}{{ x }}", NULL, "10,11,12,1");
    ok("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", NULL, "6");
    ok("{% for x in [1,2,3] %}{{ loop.previtem is defined }}{{ loop.nextitem }}{% endfor %}", NULL, "False2True3True");
    ok("{% if n > 5 %}a{% elif n == 3 %}b{% else %}c{% endif %}{{ 'y' if t else 'n' }}{{ 'y' if not t }}", msgs, "by");
    ok("{% set b %}x{{ n }}y{% endset %}[{{ b }}]{% filter upper %}abc{% endfilter %}", msgs, "[x3y]ABC");
    ok("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }}{{ greet('b', punct='?') }}",
       NULL, "Hi a!Hi b?");
    ok("{% for m in messages %}{% generation %}{{ m.role[0] }}{% endgeneration %}{% endfor %}", msgs, "sua");
    /* operators and tests */
    ok("{{ 'a' in 'cat' }}{{ 2 in [1,2] }}{{ 'k' not in {'k':1} }}{{ 1 == 1.0 }}{{ true and 0 }}{{ none or 'x' }}{{ not 0 }}",
       NULL, "TrueTrueFalseTrue0xTrue");
    ok("{{ 'a' is string }}{{ d is mapping }}{{ d.a is iterable }}{{ d.a is sequence }}{{ f is number }}{{ n is integer }}"
       "{{ t is boolean }}{{ t is true }}{{ z is false }}{{ 4 is divisibleby 2 }}{{ 3 is odd }}{{ n is eq 3 }}",
       msgs, "TrueTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrue");
    /* filters */
    ok("{{ messages[1].content|trim }}|{{ 'Ab'|upper }}{{ 'Ab'|lower }}|{{ 'hello world'|title }}|{{ 'hELLo'|capitalize }}", msgs,
       "hé|ABab|Hello World|Hello");
    ok("{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ 'é\"\\n'|tojson }}|{{ [1.5, none, true]|tojson }}|{{ {'b':1,'a':2}|tojson(sort_keys=true) }}",
       msgs, "{\"b\": 1, \"a\": [1, 2.0, \"x\"]}|{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2.0,\n    \"x\"\n  ]\n}|\"é\\\"\\n\"|"
             "[1.5, null, true]|{\"a\": 2, \"b\": 1}");
    ok("{{ messages|map(attribute='role')|join(', ') }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|"
       "{{ messages|rejectattr('role', 'in', ['user', 'system'])|map(attribute='content')|first }}|{{ [3,1,2]|sort|list }}|"
       "{{ ['b','A','a']|unique|list }}|{{ d|dictsort }}|{{ [1,2,3]|last }}|{{ none|default('x') }}|{{ q|default('y') }}",
       msgs, "system, user, assistant|1|A|[1, 2, 3]|['b', 'A']|[('a', [1, 2.0, 'x']), ('b', 1)]|3|None|y");
    ok("{{ 'a-b-c'|replace('-', '+') }}|{{ '42'|int + 1 }}|{{ 'x'|int }}|{{ 3.7|int }}|{{ 'ab'|list }}|{{ d|items|list|length }}|"
       "{{ 'one two  three'|wordcount }}|{{ 'a\\nb'|indent(2) }}|{{ [1,2]|string }}|{{ 1|string ~ 'x' }}",
       msgs, "a+b+c|43|0|3|['a', 'b']|2|3|a\n  b|[1, 2]|1x");
    /* string and dict methods */
    ok("{{ ' x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\na'.lstrip('\\n') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|"
       "{{ 'a,b,c'.split(',', 1) }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}|{{ 'héllo'.find('l') }}|"
       "{{ 'a{}c{}'.format(1, 'x') }}|{{ d.get('b') }}{{ d.get('q', 5) }}{{ d.get('q') }}|{{ d.keys()|list }}|{{ 'ab'.replace('a', 'c') }}",
       msgs, "x|a|a|['a', 'b', '', 'c']|['a', 'b']|['a', 'b,c']|TrueTrue|2|a1cx|15None|['b', 'a']|cb");
    ok("{{ strftime_now('%Y-%m-%d') }}|{{ range(3)|list }}|{{ range(1, 7, 2)|list }}|{{ dict(a=1) }}", NULL,
       "2024-07-26|[0, 1, 2]|[1, 3, 5]|{'a': 1}");
    /* errors Jinja2 raises too */
    fails("{{ raise_exception('bad role') }}", NULL, "bad role");
    fails("{{ missing.attr }}", NULL, "'missing' is undefined");
    fails("{{ 1 + 'a' }}", NULL, "unsupported operand");
    fails("{{ messages|selectattr('role')|length }}", msgs, "no len()");
    fails("{{ x|nosuchfilter }}", NULL, NULL);
    ok("{% if false %}{{ x|nosuchfilter }}{% endif %}ok", NULL, "ok"); /* only run-time inside if, as Jinja2 */
    fails("{% if true %}{{ x|nosuchfilter }}{% endif %}", NULL, "No filter named");
    fails("{% for x in 5 %}{% endfor %}", NULL, "not iterable");
    fails("{{ [1,2] | tojson }}{{ messages[0].items() | tojson }}", msgs, "not JSON serializable");
    /* syntax errors carry a position */
    fails("{% if x %}", NULL, "line 1");
    fails("a\n{{ 1 + }}", NULL, "line 2");
    fails("{% for %}", NULL, NULL);
    fails("{% endfor %}", NULL, NULL);
    fails("{{ 'abc }}", NULL, "unterminated");
    fails("{# open", NULL, "comment");
    fails("{% frobnicate %}", NULL, "unknown tag");
    fails("\xff{{ 1 }}", NULL, "UTF-8");
    /* hostile templates and contexts: clean failures within limits */
    fails("{% for i in range(1000000000) %}x{% endfor %}", NULL, "Range too big");
    fails("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL, NULL); /* steps or memory */
    fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, "nested too deeply");
    fails("{% set s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' * 100000 %}{% for i in range(100) %}{{ s }}{% endfor %}", NULL,
          "output too large");
    fails("{{ 'x' * 10000000000 }}", NULL, NULL);
    fails("{{ 9223372036854775807 + 1 }}", NULL, "overflow");
    {
        char deep[4096];
        size_t k = 0;
        k += (size_t)snprintf(deep + k, sizeof deep - k, "{{ ");
        for (int i = 0; i < 1000; i++) deep[k++] = '(';
        deep[k] = 0;
        fails(deep, NULL, NULL);
        char json[4096];
        k = 0;
        k += (size_t)snprintf(json, sizeof json, "{\"a\":");
        for (int i = 0; i < 2000; i++) json[k++] = '[';
        json[k] = 0;
        fails("{{ a }}", json, NULL);
    }
    fails("{{ a }}", "{\"a\": \"\\ud800\"}", "surrogate");
    fails("{{ a }}", "[1]", "object");
    fails("{{ a }}", "{\"a\": 1,}", NULL);
    fails("{{ a }}", "{\"a\": 99999999999999999999}", NULL);
    if (failures) printf("%d failure(s)\n", failures);
    else printf("test_jinja: all passed\n");
    return failures != 0;
}
