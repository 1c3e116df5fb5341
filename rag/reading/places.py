"""Names of countries and US states, to tell whether a sentence names the kind of place a question asks for
("Which country declared…?", "Primary voters in which state…?"). A capitalised word is not enough there: the
sentence that matches such a question best often names an agency or a person ("JMA announced a Level 5 alert"),
while the country is in the sentence next to it."""

from __future__ import annotations

import re
from functools import lru_cache

COUNTRIES = frozenset(n.strip() for n in """
Afghanistan, Albania, Algeria, Andorra, Angola, Antigua and Barbuda, Argentina, Armenia, Australia, Austria,
Azerbaijan, Bahamas, Bahrain, Bangladesh, Barbados, Belarus, Belgium, Belize, Benin, Bhutan, Bolivia,
Bosnia and Herzegovina, Botswana, Brazil, Brunei, Bulgaria, Burkina Faso, Burundi, Cabo Verde, Cape Verde, Cambodia,
Cameroon, Canada, Central African Republic, Chad, Chile, China, Colombia, Comoros, Congo, Costa Rica, Croatia, Cuba,
Cyprus, Czech Republic, Czechia, Denmark, Djibouti, Dominica, Dominican Republic, East Timor, Timor-Leste, Ecuador,
Egypt, El Salvador, Equatorial Guinea, Eritrea, Estonia, Eswatini, Swaziland, Ethiopia, Fiji, Finland, France, Gabon,
Gambia, Georgia, Germany, Ghana, Greece, Grenada, Guatemala, Guinea, Guinea-Bissau, Guyana, Haiti, Honduras, Hungary,
Iceland, India, Indonesia, Iran, Iraq, Ireland, Israel, Italy, Ivory Coast, Jamaica, Japan, Jordan, Kazakhstan, Kenya,
Kiribati, Kosovo, Kuwait, Kyrgyzstan, Laos, Latvia, Lebanon, Lesotho, Liberia, Libya, Liechtenstein, Lithuania,
Luxembourg, Madagascar, Malawi, Malaysia, Maldives, Mali, Malta, Marshall Islands, Mauritania, Mauritius, Mexico,
Micronesia, Moldova, Monaco, Mongolia, Montenegro, Morocco, Mozambique, Myanmar, Burma, Namibia, Nauru, Nepal,
Netherlands, Holland, New Zealand, Nicaragua, Niger, Nigeria, North Korea, North Macedonia, Norway, Oman, Pakistan,
Palau, Palestine, Panama, Papua New Guinea, Paraguay, Peru, Philippines, Poland, Portugal, Qatar, Romania, Russia,
Rwanda, Saint Kitts and Nevis, Saint Lucia, Saint Vincent and the Grenadines, Samoa, San Marino,
Sao Tome and Principe, Saudi Arabia, Senegal, Serbia, Seychelles, Sierra Leone, Singapore, Slovakia, Slovenia,
Solomon Islands, Somalia, South Africa, South Korea, South Sudan, Spain, Sri Lanka, Sudan, Suriname, Sweden,
Switzerland, Syria, Taiwan, Tajikistan, Tanzania, Thailand, Togo, Tonga, Trinidad and Tobago, Tunisia, Turkey,
Türkiye, Turkmenistan, Tuvalu, Uganda, Ukraine, United Arab Emirates, UAE, United Kingdom, UK, Britain,
Great Britain, England, Scotland, Wales, Northern Ireland, United States, US, U.S., USA, America, Uruguay, Uzbekistan,
Vanuatu, Vatican, Venezuela, Vietnam, Yemen, Zambia, Zimbabwe, Hong Kong, Greenland, Puerto Rico
""".replace("\n", " ").split(",") if n.strip())

US_STATES = frozenset(n.strip() for n in """
Alabama, Alaska, Arizona, Arkansas, California, Colorado, Connecticut, Delaware, Florida, Georgia, Hawaii, Idaho,
Illinois, Indiana, Iowa, Kansas, Kentucky, Louisiana, Maine, Maryland, Massachusetts, Michigan, Minnesota,
Mississippi, Missouri, Montana, Nebraska, Nevada, New Hampshire, New Jersey, New Mexico, New York, North Carolina,
North Dakota, Ohio, Oklahoma, Oregon, Pennsylvania, Rhode Island, South Carolina, South Dakota, Tennessee, Texas,
Utah, Vermont, Virginia, Washington, West Virginia, Wisconsin, Wyoming, District of Columbia
""".replace("\n", " ").split(",") if n.strip())

# The noun a "which X" question asks with -> the names that answer it.
PLACE_KINDS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("country", "countries", "nation", "nations"), COUNTRIES),
    **dict.fromkeys(("state", "states"), US_STATES),
}


@lru_cache(maxsize=4)
def _pattern(names: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    # Case-sensitive: "Chad" and "Turkey" are countries, "turkey" is not. A possessive still counts.
    return re.compile(rf"(?<![\w.])({alternatives})(?!\w)")


def places(text: str, kind: str) -> list[str]:
    """The places of the kind a "which <kind>" question asks for that `text` names, in order ([] for a kind
    that is not a place).

    >>> places("NASA launched a rocket from Australia’s Northern Territory, then flew to the U.S. and Japan.", "country")
    ['Australia', 'U.S.', 'Japan']
    >>> places("Primary voters in Kansas rejected it; turkey prices rose in New York.", "state")
    ['Kansas', 'New York']
    >>> places("JMA announced a Level 5 alert.", "country"), places("Kansas", "show")
    ([], [])
    """
    names = PLACE_KINDS.get(kind.lower())
    if not names:
        return []
    return [m.group(1) for m in _pattern(names).finditer(text)]
