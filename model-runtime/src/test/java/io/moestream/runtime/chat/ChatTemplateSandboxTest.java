package io.moestream.runtime.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Hostile templates (a template arrives inside an untrusted model file): runaway recursion, loops,
 * output and memory bombs, sandbox escapes and mutation end in a clear {@link TemplateException},
 * never in a hang, an out-of-memory error or a Java object.
 */
class ChatTemplateSandboxTest {

    private static final RenderLimits SMALL = new RenderLimits(10_000, 1_000_000, 16, 100_000, 64);

    /** The defaults with a twentieth of the work budget, so that the work-bound tests run quickly. */
    private static final RenderLimits HOSTILE = new RenderLimits(RenderLimits.DEFAULT.maxSteps(), 5_000_000,
            RenderLimits.DEFAULT.maxDepth(), RenderLimits.DEFAULT.maxOutputChars(), RenderLimits.DEFAULT.maxNesting());

    private static String render(String template, Map<String, ?> vars) {
        return ChatTemplate.parse(template, HOSTILE, () -> LocalDateTime.of(2026, 1, 15, 0, 0)).render(vars);
    }

    private static String render(String template) {
        return render(template, Map.of("messages", List.of(Map.of("role", "user", "content", "hi"))));
    }

    private static void assertFails(String template, String kind, String messagePart) {
        assertThatThrownBy(() -> render(template))
                .isInstanceOf(TemplateException.class)
                .hasMessageContaining(messagePart)
                .satisfies(e -> assertThat(((TemplateException) e).kind()).isEqualTo(kind));
    }

    @Test
    void infiniteMacroRecursionStopsAtTheDepthLimit() {
        assertFails("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "LimitExceeded", "nested deeper than 64");
        assertFails("{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
                "LimitExceeded", "nested deeper");
    }

    @Test
    void infiniteRecursiveLoopStopsAtTheDepthLimit() {
        assertFails("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "LimitExceeded", "nested deeper");
    }

    @Test
    void nestedHugeLoopsStopAtTheStepLimit() {
        assertFails("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                "LimitExceeded", "loop iterations and calls");
    }

    @Test
    void rangesBeyondTheSandboxMaximumAreRefused() {
        assertFails("{{ range(100001) | length }}", "OverflowError", "Range too big");
        assertFails("{% for i in range(10 ** 12) %}{% endfor %}", "OverflowError", "Range too big");
    }

    @Test
    void outputAndMemoryBombsStopAtTheSizeLimit() {
        assertFails("{{ 'x' * 10 ** 12 }}", "LimitExceeded", "exceeds the output limit");
        assertFails("{{ [0] * 10 ** 9 }}", "LimitExceeded", "exceeds the output limit");
        assertFails("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                "LimitExceeded", "exceeds the output limit");
        assertFails("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "LimitExceeded", "output longer");
        assertFails("{{ '%999999999d' % 1 }}", "LimitExceeded", "format field");
        assertFails("{{ 'a'.center(10 ** 12) }}", "LimitExceeded", "exceeds the output limit");
        assertFails("{{ 'a\\tb'.expandtabs(10 ** 12) }}", "LimitExceeded", "exceeds the output limit");
        assertFails("{{ 'ab'.replace('', 'x' * 10000000) }}", "LimitExceeded", "exceeds the output limit");
    }

    @Test
    void expensiveFiltersInLoopsStopAtTheWorkLimit() {
        assertFails("{% set big = range(100000) | list %}{% for i in range(100000) %}{% set s = big | sort %}"
                + "{% endfor %}", "LimitExceeded", "processed");
    }

    @Test
    void sharedSublistsCannotMakePrintingOrComparingExponential() {
        String dag = "{% set ns = namespace(x=[1], y=[1]) %}{% for i in range(80) %}"
                + "{% set ns.x = [ns.x, ns.x] %}{% set ns.y = [ns.y, ns.y] %}{% endfor %}";
        assertFails(dag + "{{ ns.x }}", "LimitExceeded", "");
        assertFails(dag + "{{ ns.x == ns.y }}", "LimitExceeded", "processed");
        assertFails(dag + "{{ ns.x | tojson }}", "LimitExceeded", "");
        assertFails(dag + "{{ [ns.x, ns.y] | sort | length }}", "LimitExceeded", "processed");
        assertFails(dag + "{{ (ns.x, 1) in [(ns.y, 1)] }}", "LimitExceeded", "processed");
    }

    @Test
    void theDefaultLimitsStopAnExponentialComparison() {
        String dag = "{% set ns = namespace(x=[1], y=[1]) %}{% for i in range(80) %}"
                + "{% set ns.x = [ns.x, ns.x] %}{% set ns.y = [ns.y, ns.y] %}{% endfor %}{{ ns.x == ns.y }}";
        assertThatThrownBy(() -> ChatTemplate.parse(dag).render(Map.of())).isInstanceOf(TemplateException.class)
                .hasMessageContaining("more than 100000000 units of work");
    }

    @Test
    void indexingLongStringsInLoopsStopsAtTheWorkLimit() {
        assertFails("{% set s = 'x' * 10000000 %}{% for i in range(100000) %}{% if s[-1] == 'x' %}{% endif %}"
                + "{% endfor %}", "LimitExceeded", "processed");
    }

    @Test
    void configuredLimitsApply() {
        ChatTemplate t = ChatTemplate.parse("{% for i in range(n) %}{{ i }}{% endfor %}", SMALL, LocalDateTime::now);
        assertThat(t.render(Map.of("n", 10))).isEqualTo("0123456789");
        assertThatThrownBy(() -> t.render(Map.of("n", 20_000))).isInstanceOf(TemplateException.class)
                .hasMessageContaining("10000 loop iterations");
    }

    @Test
    void deeplyNestedSyntaxIsRefusedAtParse() {
        String deep = "{{ " + "(".repeat(5000) + "1" + ")".repeat(5000) + " }}";
        assertThatThrownBy(() -> ChatTemplate.parse(deep)).isInstanceOf(TemplateException.class)
                .hasMessageContaining("nesting deeper than 128");
        String deepIf = "{% if true %}".repeat(500) + "x" + "{% endif %}".repeat(500);
        assertThatThrownBy(() -> ChatTemplate.parse(deepIf)).isInstanceOf(TemplateException.class)
                .hasMessageContaining("nesting deeper");
    }

    @Test
    void hugeLiteralsLexInLinearTimeAndConstantStack() {
        assertThat(render("{{ " + "1".repeat(2_000_000) + ".5 }}")).isEqualTo("inf");
        assertThat(render("{{ '" + "\\n".repeat(200_000) + "' | length }}")).isEqualTo("200000");
        assertFails("{{ " + "9".repeat(2_000_000) + " }}", "Unsupported", "integer literal beyond 64 bits");
        assertFails("{{ '" + "x".repeat(2_000_000) + " }}", "TemplateSyntaxError", "unexpected char");
        assertThat(render("{{ '" + "<!--".repeat(20_000) + "x' | striptags }}")).isEqualTo("<!--".repeat(20_000) + "x");
    }

    @Test
    void dunderAttributesAreUnsafe() {
        assertThat(render("[{{ ''.__class__ }}]")).isEqualTo("[]");
        assertFails("{{ ''.__class__.__mro__ }}", "SecurityError", "access to attribute '__class__' of 'str' object is unsafe.");
        assertFails("{{ messages.__class__.__subclasses__() }}", "SecurityError", "'__class__' of 'list'");
        assertFails("{{ range.__globals__['os'] }}", "SecurityError", "'__globals__'");
        assertFails("{{ namespace.__init__.__globals__ }}", "SecurityError", "'__init__'");
        assertFails("{{ messages[0]['__class__']['x'] }}", "SecurityError", "'__class__' of 'dict'");
        assertFails("{{ (messages|first).__class__() }}", "SecurityError", "unsafe");
    }

    @Test
    void mutatingMethodsAreUnsafe() {
        assertFails("{{ messages.append(1) }}", "SecurityError",
                "access to attribute 'append' of 'list' object is unsafe.");
        assertFails("{{ messages.pop() }}", "SecurityError", "'pop' of 'list'");
        assertFails("{{ messages.sort() }}", "SecurityError", "'sort' of 'list'");
        assertFails("{{ messages[0].update({'role': 'system'}) }}", "SecurityError", "'update' of 'dict'");
        assertFails("{{ messages[0].clear() }}", "SecurityError", "'clear' of 'dict'");
        assertFails("{% set d = {} %}{{ d.setdefault('a', 1) }}", "SecurityError", "'setdefault' of 'dict'");
        assertFails("{% set x = 1 %}{% set x.attr = 2 %}", "TemplateRuntimeError", "non-namespace");
    }

    @Test
    void theCallersValuesAreNeverChanged() {
        Map<String, Object> message = new LinkedHashMap<>(Map.of("role", "user", "content", "hi"));
        List<Object> messages = new ArrayList<>(List.of(message));
        Map<String, Object> vars = new HashMap<>(Map.of("messages", messages));
        render("{% set messages = [] %}{% for m in messages %}{% set m = 1 %}{% endfor %}"
                + "{% set ns = namespace(m=messages) %}{% set ns.m = 2 %}", vars);
        assertThat(messages).containsExactly(message);
        assertThat(message).containsExactlyEntriesOf(Map.of("role", "user", "content", "hi"));
    }

    @Test
    void javaObjectsNeverReachATemplate() {
        assertThatThrownBy(() -> render("{{ obj }}", Map.of("obj", new Object())))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("java.lang.Object");
        assertThatThrownBy(() -> render("{{ obj }}", Map.of("obj", List.of(Thread.currentThread()))))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void unsupportedConstructsFailNamingTheConstruct() {
        assertFails("{% include 'other.jinja' %}", "Unsupported", "{% include %}");
        assertFails("{% extends 'base.jinja' %}", "Unsupported", "{% extends %}");
        assertFails("{% import 'm.jinja' as m %}", "Unsupported", "{% import %}");
        assertFails("{{ 'some text' | wordwrap(3) }}", "TemplateRuntimeError", "wordwrap");
        assertFails("{{ lipsum() }}", "Unsupported", "lipsum()");
        assertFails("{% do messages.append(1) %}", "TemplateSyntaxError", "unknown tag 'do'");
        assertThat(render("{% if false %}{% include 'x' %}{% endif %}ok")).isEqualTo("ok");
    }

    @Test
    void raiseExceptionIsATemplateError() {
        assertFails("{{ raise_exception('roles must alternate') }}", "TemplateError", "roles must alternate");
    }
}
