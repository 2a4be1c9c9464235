import { describe, expect, test } from "bun:test";
import type { Capabilities, MessageFacts } from "../../src/ischedule/capabilities.ts";
import type { IScheduleErrorElement } from "../../src/ischedule/errors.ts";
import { planGroups } from "../../src/outbound/fit.ts";

const CAPS: Capabilities = {
  serialNumber: 1,
  versions: ["1.0"],
  components: [
    { name: "VEVENT", methods: ["REQUEST", "REPLY", "CANCEL"] },
    { name: "VTODO", methods: [] },
  ],
  calendarDataTypes: [{ contentType: "text/calendar", version: "2.0" }],
  attachments: { inline: false, external: true },
  maxContentLength: 102_400,
  minDateTime: "19910101T000000Z",
  maxDateTime: "20381231T000000Z",
  maxInstances: 150,
  maxRecipients: 100,
};
const MESSAGE: MessageFacts = {
  component: "VEVENT",
  method: "REQUEST",
  contentType: "text/calendar; charset=utf-8",
  sizeBytes: 2_000,
};
const recipients = (n: number): string[] => Array.from({ length: n }, (_, i) => `mailto:u${i}@peer.test`);

describe("planGroups", () => {
  test("splits 250 recipients by max-recipients 100 into 100, 100 and 50, in order", () => {
    const all = recipients(250);
    const plan = planGroups({ recipients: all, capabilities: CAPS, message: MESSAGE });
    expect(plan.groups.map((g) => g.length)).toEqual([100, 100, 50]);
    expect(plan.groups.flat()).toEqual(all);
    expect(plan.refused).toEqual([]);
  });

  test("keeps all recipients in one group when the peer sets no limit", () => {
    const caps = { ...CAPS, maxRecipients: undefined };
    expect(
      planGroups({ recipients: recipients(300), capabilities: caps, message: MESSAGE }).groups.map(
        (g) => g.length,
      ),
    ).toEqual([300]);
  });

  test("exactly max-recipients is one group; none is no group", () => {
    expect(
      planGroups({ recipients: recipients(100), capabilities: CAPS, message: MESSAGE }).groups,
    ).toHaveLength(1);
    expect(planGroups({ recipients: [], capabilities: CAPS, message: MESSAGE })).toEqual({
      groups: [],
      refused: [],
    });
  });

  test("refuses every recipient when VFREEBUSY is not advertised", () => {
    const all = recipients(3);
    const plan = planGroups({
      recipients: all,
      capabilities: CAPS,
      message: { ...MESSAGE, component: "VFREEBUSY" },
    });
    expect(plan.groups).toEqual([]);
    expect(plan.refused).toEqual(
      all.map((recipient) => ({
        recipient,
        reason: "the peer does not accept VFREEBUSY messages (accepts VEVENT, VTODO)",
        element: "invalid-scheduling-message",
      })),
    );
  });

  test("refuses a method the component does not list, but any method of a component listing none", () => {
    const add = planGroups({
      recipients: recipients(1),
      capabilities: CAPS,
      message: { ...MESSAGE, method: "ADD" },
    });
    expect(add.refused[0]?.reason).toBe(
      "the peer does not accept VEVENT ADD (accepts REQUEST, REPLY, CANCEL)",
    );
    const todo = planGroups({
      recipients: recipients(1),
      capabilities: CAPS,
      message: { ...MESSAGE, component: "VTODO", method: "ADD" },
    });
    expect(todo.groups).toHaveLength(1);
  });

  test("refuses every recipient of a message over max-content-length", () => {
    const plan = planGroups({
      recipients: recipients(2),
      capabilities: CAPS,
      message: { ...MESSAGE, sizeBytes: 102_401 },
    });
    expect(plan.groups).toEqual([]);
    expect(plan.refused.map((r) => [r.element, r.reason])).toEqual([
      ["max-content-length", "the message has 102401 octets; the peer accepts at most 102400"],
      ["max-content-length", "the message has 102401 octets; the peer accepts at most 102400"],
    ]);
  });

  test("refuses when the peer offers no version we speak", () => {
    const plan = planGroups({
      recipients: recipients(1),
      capabilities: { ...CAPS, versions: ["2.0"] },
      message: MESSAGE,
    });
    expect(plan.refused).toEqual([
      {
        recipient: "mailto:u0@peer.test",
        reason: "the peer supports iSchedule 2.0, not 1.0",
        element: "version-not-supported",
      },
    ]);
  });

  test("refuses media types, attachments, dates and instances the peer does not take", () => {
    const cases: [Partial<MessageFacts>, IScheduleErrorElement][] = [
      [{ contentType: "application/calendar+json" }, "invalid-calendar-data-type"],
      [{ hasInlineAttachment: true }, "attachment-type-not-supported"],
      [{ scheduled: { firstStart: "19800101T000000Z", lastEnd: "19800101T010000Z" } }, "min-date-time"],
      [{ scheduled: { firstStart: "20400101" } }, "max-date-time"],
      [{ instances: 151 }, "max-instances"],
    ];
    for (const [facts, element] of cases) {
      const plan = planGroups({
        recipients: recipients(1),
        capabilities: CAPS,
        message: { ...MESSAGE, ...facts },
      });
      expect(plan.refused.map((r) => r.element)).toEqual([element]);
      expect(plan.groups).toEqual([]);
    }
  });
});
