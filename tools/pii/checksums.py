"""The checks behind the ID and card masks: MOD 11-2 and Luhn sums, provinces, birth dates, Taiwan IDs."""

from __future__ import annotations

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# GB 2260 province codes, plus 81/82/83 (Hong Kong/Macau/Taiwan residence permits) and 91 (the
# foreigners' permanent residence card). An 18-digit order number that starts with a date (20xx...)
# fails here even when its last digit happens to satisfy MOD 11-2.
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82 83 91".split()
)
# Taiwan national ID: the letter stands for a two-digit area number.
_TW_LETTERS = {ch: n for ch, n in zip("ABCDEFGHJKLMNPQRSTUVXYWZIO", range(10, 36), strict=True)}


def id18_check_char(first17: str) -> str:
    """The GB 11643 MOD 11-2 check character of the first 17 digits of an ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def id18_valid(value: str) -> bool:
    """MOD 11-2 check of an 18-character resident ID number (GB 11643)."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    return id18_check_char(value[:17]) == value[17].upper()


def luhn_valid(digits: str) -> bool:
    """Luhn check used by bank card numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def taiwan_id_valid(value: str) -> bool:
    """Checksum of a Taiwan national ID (letter + gender digit 1/2 + 8 digits), as quoted by
    Taiwan residents; the checksum keeps ten-character product codes from being masked."""
    if len(value) != 10 or value[0] not in _TW_LETTERS or value[1] not in "12" or not value[1:].isdigit():
        return False
    area = _TW_LETTERS[value[0]]
    total = area // 10 + (area % 10) * 9 + int(value[-1])
    total += sum(int(d) * w for d, w in zip(value[1:9], range(8, 0, -1), strict=True))
    return total % 10 == 0


def _plausible_birth(yyyymmdd: str) -> bool:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])
    return 1900 <= year <= 2030 and 1 <= month <= 12 and 1 <= day <= 31


def is_id18(value: str) -> bool:
    """A valid 18-character ID: checksum, a real province and a plausible birth date."""
    return value[:2] in _PROVINCES and id18_valid(value) and _plausible_birth(value[6:14])


def is_id15(digits: str) -> bool:
    """A legacy 15-digit ID has no check digit, so province and birth date are all there is (and 91,
    the foreigners' card, only ever had 18 digits)."""
    return digits[:2] in _PROVINCES and digits[0] != "9" and _plausible_birth("19" + digits[6:12])


def is_card(digits: str) -> bool:
    """16-19 digits passing Luhn. Numbers starting 0, 1, 20 or 21 are never issued as payment cards
    (ISO/IEC 7812), and that is exactly where date- and timestamp-based order numbers start."""
    return 16 <= len(digits) <= 19 and not digits.startswith(("0", "1", "20", "21")) and luhn_valid(digits)
