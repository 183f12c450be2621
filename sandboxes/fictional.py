"""Mobile numbers set aside for fiction, for the demo's customers in both sandboxes: a text to
one reaches no one, and `phonenumbers` (so Dunwell's SMS channel) takes each for a mobile.

- Australia: mobile numbers the ACMA keeps for creative works (films, books, demos), in the
  0491 57x xxx block. UNVERIFIED: copied as commonly quoted from the ACMA's list of numbers for
  use in creative works (searched: ACMA "fictitious mobile numbers" 0491 570; the list page
  itself was not in reach); tests/unit/test_fictional_numbers.py pins that each parses as a
  mobile.
- North America: 555-0100 to 555-0199, reserved for fictional use by the numbering plan;
  `phonenumbers` reads them as fixed line or mobile, which texts accept. Their area code (201)
  puts the customer in New York's time zone.

The UK's own drama range (07700 900000 to 07700 900999) is refused by `phonenumbers` as no valid
number, so it cannot show a text being sent. Customers alternate between the two ranges, so that
at most hours one of them is inside the law's texting hours (rules/sms.py): the Australian
number spans Perth to Lord Howe Island (about 02:00 to 10:00 UTC in December), New York about
13:00 to 02:00 UTC.
"""

from __future__ import annotations

ACMA_MOBILES = (
    "+61 491 570 006", "+61 491 570 156", "+61 491 570 157", "+61 491 570 158",
    "+61 491 570 159", "+61 491 570 110", "+61 491 570 313", "+61 491 570 737",
    "+61 491 571 266", "+61 491 571 491", "+61 491 571 804", "+61 491 572 549",
    "+61 491 572 665", "+61 491 572 983", "+61 491 573 770", "+61 491 573 087",
    "+61 491 574 118", "+61 491 574 632", "+61 491 575 254", "+61 491 575 789",
    "+61 491 576 398", "+61 491 576 801", "+61 491 577 426", "+61 491 577 644",
    "+61 491 578 957", "+61 491 578 148", "+61 491 578 888", "+61 491 579 212",
    "+61 491 579 760", "+61 491 579 455",
)


def fictional_mobile(index: int) -> str:
    """The `index`th demo customer's mobile: North American and Australian in turn."""
    if index % 2:
        return ACMA_MOBILES[(index // 2) % len(ACMA_MOBILES)]
    return f"+1 201 555 01{(index // 2) % 100:02d}"
