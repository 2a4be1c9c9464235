/**
 * Error element names peers send beyond the draft's seventeen (draft §6.1.2), with what they mean
 * in words an operator reads in the message log. CalendarServer names its own checks
 * (txdav/caldav/datastore/scheduling: caldav/scheduler.py and ischedule/scheduler.py): the
 * ORGANIZER or the replying ATTENDEE is not one it lets schedule, or a recipient it does not know.
 * The draft's own names are the protocol's vocabulary and are shown as they are.
 */

const MEANINGS: Readonly<Record<string, string>> = {
  // checkOrganizerAsOriginator / checkOrganizer: "Organizer cannot schedule", "No principal for organizer"
  "organizer-denied": "it does not let this ORGANIZER schedule with its users",
  // checkAttendeeAsOriginator: "No principal for attendee"
  "attendee-denied": "it does not take this ATTENDEE as the one who replies",
  // generateSchedulingResponses: "Unknown recipient" (3.7)
  "recipient-invalid": "it has no calendar user with this address",
  // ischedule/delivery.py: its own server-to-server request failed
  "recipient-failed": "it could not pass the message on to the recipient's server",
};

/** What a non-draft error element means, said of the receiver ("it ..."); undefined for others. */
export function peerErrorMeaning(element: string | undefined): string | undefined {
  return element !== undefined && Object.hasOwn(MEANINGS, element) ? MEANINGS[element] : undefined;
}
