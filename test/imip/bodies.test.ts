import { describe, expect, test } from "bun:test";
import { escapeHtml, imipBodies } from "../../src/imip/index.ts";

const DESIGN_MEETING = {
  title: "Invitation: Design meeting",
  when: "Thu 2 Sep 2004, 13:00-14:00 UTC",
  location: "Room 101",
  organizer: "Bernard Desruisseaux <bernard@example.com>",
  attendees: [
    { name: "Bernard Desruisseaux", address: "bernard@example.com", partstat: "ACCEPTED" },
    { address: "cyrus@example.org", partstat: "NEEDS-ACTION" },
  ],
  description: "Agenda:\n1. Review\r\n2. Next steps",
};

describe("imipBodies()", () => {
  test("the text body lists title, time, place, organiser, attendees and description", () => {
    expect(imipBodies(DESIGN_MEETING).text).toBe(
      [
        "Invitation: Design meeting",
        "",
        "When:      Thu 2 Sep 2004, 13:00-14:00 UTC",
        "Where:     Room 101",
        "Organizer: Bernard Desruisseaux <bernard@example.com>",
        "Attendees: Bernard Desruisseaux <bernard@example.com> (accepted)",
        "           cyrus@example.org (needs action)",
        "",
        "Agenda:",
        "1. Review",
        "2. Next steps",
        "",
      ].join("\n"),
    );
  });

  test("the HTML body escapes everything the peer sent", () => {
    const { html } = imipBodies({
      title: 'Invitation: <script>alert("x")</script>',
      when: "<b>now</b>",
      organizer: "Eve <eve@example.com>",
      attendees: [{ name: "O'Brien & Co", address: "ob@example.org" }],
      description: "<img src=x onerror=alert(1)>\nline 2",
    });
    expect(html).not.toContain("<script");
    expect(html).not.toContain("<img");
    expect(html).not.toContain("<b>now");
    expect(html).toContain("Invitation: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(html).toContain("Eve &lt;eve@example.com&gt;");
    expect(html).toContain("O&#39;Brien &amp; Co &lt;ob@example.org&gt;");
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;<br>\nline 2");
  });

  test("the HTML body is a complete UTF-8 document with a row per field", () => {
    const { html } = imipBodies(DESIGN_MEETING);
    expect(html).toStartWith('<!DOCTYPE html>\n<html><head><meta charset="UTF-8">');
    expect(html.trimEnd()).toEndWith("</body></html>");
    expect(html.match(/<tr>/g)).toHaveLength(4);
    expect(html).toContain("<h2>Invitation: Design meeting</h2>");
  });

  test("fields left out are not shown, and a title with line breaks becomes one line", () => {
    const { text, html } = imipBodies({ title: "Cancelled:\r\nDesign meeting" });
    expect(text).toBe("Cancelled: Design meeting\n");
    expect(html).not.toContain("<table>");
    expect(html).not.toContain("<p>");
  });

  test("escapeHtml() escapes the five HTML-significant characters", () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
    );
  });
});
