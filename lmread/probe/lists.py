"""Built-in lists for ``lmread probe --list NAME``, written for lmread from public facts.

Each list is one item per line.  ``presidents`` follows the essay's prompt shape, one presidency
per line with its term dates ("George Washington, April 30, 1789 – March 4, 1797"); Grover
Cleveland and Donald Trump appear once per non-consecutive term.  ``elements`` holds the 118
chemical elements in order of atomic number, ``months`` the months of the Gregorian calendar and
``planets`` the eight planets of the Solar System from the Sun outwards.
"""

from __future__ import annotations

from lmread.errors import OptionError

_PRESIDENTS = (
    ("George Washington", "April 30, 1789", "March 4, 1797"),
    ("John Adams", "March 4, 1797", "March 4, 1801"),
    ("Thomas Jefferson", "March 4, 1801", "March 4, 1809"),
    ("James Madison", "March 4, 1809", "March 4, 1817"),
    ("James Monroe", "March 4, 1817", "March 4, 1825"),
    ("John Quincy Adams", "March 4, 1825", "March 4, 1829"),
    ("Andrew Jackson", "March 4, 1829", "March 4, 1837"),
    ("Martin Van Buren", "March 4, 1837", "March 4, 1841"),
    ("William Henry Harrison", "March 4, 1841", "April 4, 1841"),
    ("John Tyler", "April 4, 1841", "March 4, 1845"),
    ("James K. Polk", "March 4, 1845", "March 4, 1849"),
    ("Zachary Taylor", "March 4, 1849", "July 9, 1850"),
    ("Millard Fillmore", "July 9, 1850", "March 4, 1853"),
    ("Franklin Pierce", "March 4, 1853", "March 4, 1857"),
    ("James Buchanan", "March 4, 1857", "March 4, 1861"),
    ("Abraham Lincoln", "March 4, 1861", "April 15, 1865"),
    ("Andrew Johnson", "April 15, 1865", "March 4, 1869"),
    ("Ulysses S. Grant", "March 4, 1869", "March 4, 1877"),
    ("Rutherford B. Hayes", "March 4, 1877", "March 4, 1881"),
    ("James A. Garfield", "March 4, 1881", "September 19, 1881"),
    ("Chester A. Arthur", "September 19, 1881", "March 4, 1885"),
    ("Grover Cleveland", "March 4, 1885", "March 4, 1889"),
    ("Benjamin Harrison", "March 4, 1889", "March 4, 1893"),
    ("Grover Cleveland", "March 4, 1893", "March 4, 1897"),
    ("William McKinley", "March 4, 1897", "September 14, 1901"),
    ("Theodore Roosevelt", "September 14, 1901", "March 4, 1909"),
    ("William Howard Taft", "March 4, 1909", "March 4, 1913"),
    ("Woodrow Wilson", "March 4, 1913", "March 4, 1921"),
    ("Warren G. Harding", "March 4, 1921", "August 2, 1923"),
    ("Calvin Coolidge", "August 2, 1923", "March 4, 1929"),
    ("Herbert Hoover", "March 4, 1929", "March 4, 1933"),
    ("Franklin D. Roosevelt", "March 4, 1933", "April 12, 1945"),
    ("Harry S. Truman", "April 12, 1945", "January 20, 1953"),
    ("Dwight D. Eisenhower", "January 20, 1953", "January 20, 1961"),
    ("John F. Kennedy", "January 20, 1961", "November 22, 1963"),
    ("Lyndon B. Johnson", "November 22, 1963", "January 20, 1969"),
    ("Richard Nixon", "January 20, 1969", "August 9, 1974"),
    ("Gerald Ford", "August 9, 1974", "January 20, 1977"),
    ("Jimmy Carter", "January 20, 1977", "January 20, 1981"),
    ("Ronald Reagan", "January 20, 1981", "January 20, 1989"),
    ("George H. W. Bush", "January 20, 1989", "January 20, 1993"),
    ("Bill Clinton", "January 20, 1993", "January 20, 2001"),
    ("George W. Bush", "January 20, 2001", "January 20, 2009"),
    ("Barack Obama", "January 20, 2009", "January 20, 2017"),
    ("Donald Trump", "January 20, 2017", "January 20, 2021"),
    ("Joe Biden", "January 20, 2021", "January 20, 2025"),
    ("Donald Trump", "January 20, 2025", "present"),
)

_ELEMENTS = (
    "Hydrogen", "Helium", "Lithium", "Beryllium", "Boron", "Carbon", "Nitrogen", "Oxygen", "Fluorine", "Neon",
    "Sodium", "Magnesium", "Aluminium", "Silicon", "Phosphorus", "Sulfur", "Chlorine", "Argon", "Potassium",
    "Calcium", "Scandium", "Titanium", "Vanadium", "Chromium", "Manganese", "Iron", "Cobalt", "Nickel", "Copper",
    "Zinc", "Gallium", "Germanium", "Arsenic", "Selenium", "Bromine", "Krypton", "Rubidium", "Strontium",
    "Yttrium", "Zirconium", "Niobium", "Molybdenum", "Technetium", "Ruthenium", "Rhodium", "Palladium", "Silver",
    "Cadmium", "Indium", "Tin", "Antimony", "Tellurium", "Iodine", "Xenon", "Caesium", "Barium", "Lanthanum",
    "Cerium", "Praseodymium", "Neodymium", "Promethium", "Samarium", "Europium", "Gadolinium", "Terbium",
    "Dysprosium", "Holmium", "Erbium", "Thulium", "Ytterbium", "Lutetium", "Hafnium", "Tantalum", "Tungsten",
    "Rhenium", "Osmium", "Iridium", "Platinum", "Gold", "Mercury", "Thallium", "Lead", "Bismuth", "Polonium",
    "Astatine", "Radon", "Francium", "Radium", "Actinium", "Thorium", "Protactinium", "Uranium", "Neptunium",
    "Plutonium", "Americium", "Curium", "Berkelium", "Californium", "Einsteinium", "Fermium", "Mendelevium",
    "Nobelium", "Lawrencium", "Rutherfordium", "Dubnium", "Seaborgium", "Bohrium", "Hassium", "Meitnerium",
    "Darmstadtium", "Roentgenium", "Copernicium", "Nihonium", "Flerovium", "Moscovium", "Livermorium",
    "Tennessine", "Oganesson",
)

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")

_PLANETS = ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune")

#: list name -> (one-line description, lines)
LISTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "presidents": ("the US presidents with their term dates, one presidency per line",
                   tuple(f"{name}, {start} – {end}" for name, start, end in _PRESIDENTS)),
    "elements": ("the 118 chemical elements in order of atomic number", _ELEMENTS),
    "months": ("the twelve months of the year", _MONTHS),
    "planets": ("the eight planets from the Sun outwards", _PLANETS),
}


def list_names() -> list[str]:
    """The names of the built-in lists."""
    return list(LISTS)


def builtin_list(name: str) -> str:
    """The text of the built-in list ``name``: one item per line, ending with a newline.

    Raises :class:`OptionError` naming the known lists when ``name`` is not one of them.
    """
    if name not in LISTS:
        raise OptionError(f"unknown list {name!r}: use one of {', '.join(LISTS)}, or give your own with --file FILE")
    return "\n".join(LISTS[name][1]) + "\n"
