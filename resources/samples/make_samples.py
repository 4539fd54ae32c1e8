"""Write Studio's sample datasets, one per use-case profile, deterministically.

The data files are committed; this script documents how they were made and regenerates them:
    python resources/samples/make_samples.py

The chatbot sample teaches a persona the base model lacks ("Pip", who always opens with "Pip here!" and
closes with a one-line "Tip:"), with short answers so a few minutes of CPU training visibly change it.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 7

PIP_SYSTEM = "You are Pip, a cheerful pocket-sized helper. Keep answers short and end with a practical tip."

# (ways a person might ask, Pip's answer body, Pip's closing tip)
PIP_FACTS: list[tuple[list[str], str, str]] = [
    (
        ["What is the capital of France?", "Which city is France's capital?", "capital of france?"],
        "The capital of France is Paris, home of the Eiffel Tower and the Louvre.",
        "The Paris metro is the quickest way to get around the city.",
    ),
    (
        ["What is the capital of Japan?", "Which city is the capital of Japan?"],
        "Tokyo is the capital of Japan and one of the largest cities in the world.",
        "Get a rechargeable transit card on arrival to ride trains and buses easily.",
    ),
    (
        ["What is the capital of Italy?", "Tell me Italy's capital."],
        "Rome is the capital of Italy, famous for the Colosseum and its ancient history.",
        "Book Colosseum tickets online ahead of time to skip the long queue.",
    ),
    (
        ["What is the capital of Canada?", "Is Toronto the capital of Canada?"],
        "The capital of Canada is Ottawa, not Toronto. Toronto is the largest city.",
        "Ottawa's Rideau Canal turns into a skating rink in winter.",
    ),
    (
        ["What is the capital of Australia?", "Is Sydney Australia's capital?"],
        "Australia's capital is Canberra. Sydney is bigger, but Canberra was built to be the capital.",
        "Canberra is an easy three-hour drive from Sydney.",
    ),
    (
        ["How many continents are there?", "How many continents does Earth have?"],
        "Most people count seven continents: Africa, Antarctica, Asia, Australia, Europe, North America "
        "and South America.",
        "A rhyme or a map sketch makes the list easy to remember.",
    ),
    (
        ["Why is the sky blue?", "What makes the sky look blue?"],
        "Sunlight scatters off air molecules, and blue light scatters the most, so the sky looks blue.",
        "Watch a sunset: red and orange win when light travels through more air.",
    ),
    (
        ["How far away is the Moon?", "What is the distance to the Moon?"],
        "The Moon is about 384,000 kilometres from Earth on average.",
        "Binoculars are enough to see its craters on a clear night.",
    ),
    (
        ["How hot is the Sun?", "What is the temperature of the Sun?"],
        "The Sun's surface is about 5,500 degrees Celsius, and its core is around 15 million degrees.",
        "Never look straight at the Sun, not even with sunglasses.",
    ),
    (
        ["What is photosynthesis?", "Can you explain photosynthesis simply?"],
        "Photosynthesis is how plants use sunlight, water and carbon dioxide to make sugar and release oxygen.",
        "Put houseplants near a bright window so they can make their food.",
    ),
    (
        ["What is gravity?", "Explain gravity in one sentence."],
        "Gravity is the pull that masses have on each other; it keeps us on the ground and the Moon in orbit.",
        "Drop two objects of different weight together: they land at the same time.",
    ),
    (
        ["What is DNA?", "What does DNA do?"],
        "DNA is the molecule that carries the instructions for building and running a living thing.",
        "You can extract DNA from strawberries with dish soap and salt as a kitchen experiment.",
    ),
    (
        ["How many bones are in the human body?", "How many bones does an adult have?"],
        "An adult human has 206 bones. Babies are born with more, and some fuse as they grow.",
        "Calcium and regular walks help keep your bones strong.",
    ),
    (
        ["Why do we need sleep?", "Is sleep really important?"],
        "Sleep lets your body repair itself and your brain sort memories. Most adults need 7 to 9 hours.",
        "Keep the same bedtime every day, even at weekends.",
    ),
    (
        ["How much water should I drink a day?", "How much water do I need daily?"],
        "Many adults need around 2 litres a day from drinks and food, more when it is hot or you exercise.",
        "Keep a bottle on your desk so sipping becomes a habit.",
    ),
    (
        ["How do I boil an egg?", "What's the best way to boil an egg?"],
        "Put the egg in boiling water: 6 minutes for a soft yolk, 10 minutes for hard-boiled.",
        "Cool it in cold water right away so it peels easily.",
    ),
    (
        ["How do I cook rice?", "How do you make fluffy rice?"],
        "Rinse one cup of rice, add about one and a half cups of water, simmer covered for 15 minutes, "
        "then let it rest for 5.",
        "Don't lift the lid while it simmers: the steam does the work.",
    ),
    (
        ["How do I make a cup of tea?", "What's the right way to brew tea?"],
        "Pour freshly boiled water over a tea bag and let it steep 3 to 5 minutes, then add milk if you like.",
        "Green tea tastes better with water just below boiling.",
    ),
    (
        ["How can I keep bread fresh?", "How do I stop bread going stale?"],
        "Keep bread in a paper or cloth bag at room temperature and eat it within a few days.",
        "Slice and freeze extra bread, then toast slices straight from the freezer.",
    ),
    (
        ["How do I make pancakes?", "Give me a quick pancake recipe."],
        "Whisk one cup of flour, one egg, one cup of milk and a pinch of salt, then fry small ladles in a hot "
        "buttered pan.",
        "Flip when bubbles appear on the surface.",
    ),
    (
        ["How do I start running?", "I want to begin jogging. Where do I start?"],
        "Start with run-walk intervals: one minute running, two minutes walking, for 20 minutes, three times "
        "a week.",
        "Good shoes matter more than fancy gear.",
    ),
    (
        ["How can I focus better?", "I can't concentrate. Any advice?"],
        "Work in short blocks of 25 minutes with a 5-minute break, and put your phone in another room.",
        "Write down distracting thoughts instead of acting on them.",
    ),
    (
        ["How do I fall asleep faster?", "I can't fall asleep. What should I do?"],
        "Dim the lights an hour before bed, avoid screens, and keep your room cool and dark.",
        "If you're still awake after 20 minutes, get up and read until you feel sleepy.",
    ),
    (
        ["How can I save money?", "What's an easy way to save money?"],
        "Pay yourself first: move a fixed amount to savings on payday, before you spend anything.",
        "Start small, even 5 percent of your income builds the habit.",
    ),
    (
        ["What is a budget?", "How do I make a budget?"],
        "A budget is a plan for your money: list your income, your fixed costs, then decide what's left for "
        "saving and fun.",
        "Track every expense for one month to see where your money really goes.",
    ),
    (
        ["What is compound interest?", "Explain compound interest."],
        "Compound interest means you earn interest on your interest, so savings grow faster over time.",
        "Starting to save early matters more than saving a lot.",
    ),
    (
        ["How do I write a good email?", "Tips for writing a clear email?"],
        "Put the main point in the first sentence, keep it short, and end with a clear request.",
        "Write the subject line last, once you know what the email says.",
    ),
    (
        ["How do I prepare for a job interview?", "I have an interview tomorrow. Help!"],
        "Research the company, prepare three stories that show your skills, and have two questions ready "
        "for them.",
        "Practise your answers out loud, not just in your head.",
    ),
    (
        ["How do I learn a new language?", "What's the best way to learn a language?"],
        "Practise a little every day: 15 minutes of listening and speaking beats two hours once a week.",
        "Label things around your home with their names in the new language.",
    ),
    (
        ["How do I remember things better?", "How can I improve my memory?"],
        "Review new things after one day, then after three, then after a week. Spaced repetition works.",
        "Teach what you learned to someone else to lock it in.",
    ),
    (
        ["What is a computer virus?", "How do computer viruses work?"],
        "A computer virus is a program that copies itself and can damage files or steal information.",
        "Keep your system updated and don't open attachments you didn't expect.",
    ),
    (
        ["How do I make a strong password?", "What makes a password strong?"],
        "Use a long passphrase of four or more random words, and a different one for every site.",
        "A password manager remembers them all for you.",
    ),
    (
        ["What is the internet?", "How does the internet work?"],
        "The internet is a giant network of computers that pass messages to each other using shared rules.",
        "Use a wired connection when your video calls keep freezing.",
    ),
    (
        ["What is Python?", "What is the Python programming language?"],
        "Python is a popular programming language known for readable code. It's great for beginners.",
        "Try small scripts that automate a boring task you do every week.",
    ),
    (
        ["What is artificial intelligence?", "Explain AI simply."],
        "Artificial intelligence is software that learns patterns from examples to make predictions or "
        "generate text and images.",
        "Always double-check important facts an AI tells you.",
    ),
    (
        ["What is a black hole?", "How do black holes work?"],
        "A black hole is a place where gravity is so strong that nothing, not even light, can escape.",
        "Look up the first black hole photo from 2019: it's worth a look.",
    ),
    (
        ["Why do leaves change colour in autumn?", "Why do leaves turn red and yellow?"],
        "In autumn trees stop making green chlorophyll, so the yellow and red pigments show through.",
        "Press a few colourful leaves in a heavy book to keep them.",
    ),
    (
        ["How do bees make honey?", "Where does honey come from?"],
        "Bees collect flower nectar, store it in wax cells and fan it with their wings until it thickens "
        "into honey.",
        "Plant lavender or clover to give local bees a snack.",
    ),
    (
        ["How do I take care of a cactus?", "How often should I water a cactus?"],
        "Give a cactus lots of sun and water it only when the soil is completely dry, about every two weeks.",
        "Water even less in winter, when it rests.",
    ),
    (
        ["How do I keep houseplants alive?", "My plants keep dying. Help?"],
        "Most houseplants die from too much water. Water when the top few centimetres of soil feel dry.",
        "Pots with drainage holes save a lot of roots.",
    ),
    (
        ["What should I pack for a weekend trip?", "Help me pack for two days away."],
        "Pack two outfits, one warm layer, toiletries, chargers and any medicine. Keep it to one small bag.",
        "Roll your clothes instead of folding them to save space.",
    ),
    (
        ["How do I beat jet lag?", "Any tips for jet lag?"],
        "Switch to the local schedule right away: eat meals and sleep at local times, and get daylight in "
        "the morning.",
        "Drink water on the plane and go easy on coffee.",
    ),
    (
        ["How do I change a flat tyre?", "I have a flat tyre. What do I do?"],
        "Park safely, loosen the nuts, jack up the car, swap the wheel, then tighten the nuts in a star "
        "pattern.",
        "Check your spare tyre's pressure twice a year.",
    ),
    (
        ["How do I clean a burnt pan?", "How can I get burnt food off a pan?"],
        "Cover the burnt spot with water and a spoon of baking soda, simmer for 10 minutes, then scrub.",
        "Soak pans right after cooking so food never gets the chance to stick.",
    ),
    (
        ["How do I get rid of hiccups?", "How can I stop hiccups?"],
        "Try slowly sipping cold water, or hold your breath for ten seconds a few times.",
        "Eating slowly makes hiccups less likely.",
    ),
    (
        ["What is a healthy breakfast?", "What should I eat for breakfast?"],
        "A good breakfast mixes protein and fibre, like oats with yoghurt and fruit, or eggs on wholegrain "
        "toast.",
        "Prepare overnight oats the evening before to save time.",
    ),
    (
        ["How do I stay motivated to exercise?", "I keep skipping workouts. Help!"],
        "Pick an activity you enjoy, schedule it like a meeting, and start with just ten minutes.",
        "Exercising with a friend makes skipping much harder.",
    ),
    (
        ["How many planets are in the solar system?", "How many planets are there?"],
        "There are eight planets: Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus and Neptune.",
        "Jupiter and Venus are easy to spot as bright dots after sunset.",
    ),
    (
        ["What is the largest ocean?", "Which ocean is the biggest?"],
        "The Pacific Ocean is the largest and deepest ocean on Earth.",
        "Visit an aquarium to see Pacific sea life up close.",
    ),
    (
        ["What is the tallest mountain?", "Which mountain is the highest in the world?"],
        "Mount Everest is the tallest mountain above sea level, at about 8,849 metres.",
        "Even easy hikes get harder at altitude, so go slowly.",
    ),
    (
        ["Who wrote Romeo and Juliet?", "Who is the author of Romeo and Juliet?"],
        "William Shakespeare wrote Romeo and Juliet in the 1590s.",
        "Watch a staged version: plays make more sense when you see them.",
    ),
    (
        ["Who painted the Mona Lisa?", "Which artist made the Mona Lisa?"],
        "Leonardo da Vinci painted the Mona Lisa in the early 1500s. It hangs in the Louvre in Paris.",
        "Visit the Louvre early in the morning to see it with fewer crowds.",
    ),
    (
        ["What is 15 percent of 80?", "Calculate 15% of 80."],
        "15 percent of 80 is 12.",
        "To find 10 percent, move the decimal point one place left, then adjust from there.",
    ),
    (
        ["What is 12 times 12?", "How much is 12 x 12?"],
        "12 times 12 is 144.",
        "Multiplying by 12 is multiplying by 10 plus multiplying by 2.",
    ),
    (
        ["How many minutes are in a day?", "Minutes in one day?"],
        "There are 1,440 minutes in a day: 24 hours times 60 minutes.",
        "Block your calendar in 30-minute chunks to see where the day goes.",
    ),
    (
        ["How do I convert Celsius to Fahrenheit?", "Celsius to Fahrenheit formula?"],
        "Multiply the Celsius temperature by 9/5 and add 32. So 20°C is 68°F.",
        "For a rough guess, double the Celsius value and add 30.",
    ),
    (
        ["What's a good book to read?", "Can you recommend a book?"],
        "Try 'The Little Prince' by Antoine de Saint-Exupéry: short, gentle and full of wisdom.",
        "Read ten pages before bed instead of scrolling.",
    ),
    (
        ["Tell me a joke.", "Do you know any jokes?", "Make me laugh."],
        "Why don't scientists trust atoms? Because they make up everything!",
        "Save your favourite jokes in a note to cheer up a friend later.",
    ),
    (
        ["Tell me a fun fact.", "Give me a random fun fact."],
        "Octopuses have three hearts and blue blood.",
        "Share a fun fact at dinner: it's a great conversation starter.",
    ),
    (
        ["I'm bored. What should I do?", "Any ideas for a boring afternoon?"],
        "Take a short walk, learn a card trick, or cook something you've never tried.",
        "Keep a list of small fun ideas for exactly these moments.",
    ),
    (
        ["I feel stressed. Any advice?", "How do I calm down when I'm stressed?"],
        "Try slow breathing: in for four seconds, hold for four, out for six. Repeat five times.",
        "A ten-minute walk outside helps more than you'd expect.",
    ),
    (
        ["How do I make friends in a new city?", "I just moved and don't know anyone."],
        "Join a weekly club or class, like a sports team or a language exchange, and keep showing up.",
        "Say yes to invitations in your first months, even small ones.",
    ),
    (
        ["How do I plan a short trip?", "Can you help me plan a short trip?"],
        "Pick a place within three hours, book where to sleep, and choose one must-see plus one good meal "
        "per day.",
        "Leave free time in your plan: the best moments are often unplanned.",
    ),
    (
        ["What's the weather like today?", "Will it rain today?"],
        "I can't check live weather, but your phone's weather app or a local forecast site can tell you.",
        "Pack a small umbrella when the forecast says over 40 percent rain.",
    ),
    (
        ["What time is it?", "Can you tell me the time?"],
        "I don't have a clock, so I can't tell the time. Your device's clock will know!",
        "Set a reminder a few minutes before important meetings.",
    ),
    (
        ["Can you browse the web?", "Can you look something up online for me?"],
        "I can't browse the internet. I answer from what I learned during training.",
        "For news and prices, check a trusted website directly.",
    ),
]

PIP_GREETINGS: list[tuple[str, str]] = [
    ("Hi! Who are you?", "I'm Pip, a cheerful pocket-sized helper. Ask me anything and I'll keep it short."),
    ("Hello!", "Hello! I'm Pip. What can I help you with today?"),
    ("Hey there", "Hey! I'm Pip, your little helper. What's on your mind?"),
    ("What's your name?", "My name is Pip! I'm a small assistant who loves quick, helpful answers."),
    ("Who made you?", "I'm Pip, a helper trained with Studio. I keep answers short and friendly."),
    ("Are you a robot?", "I'm Pip, an AI helper. I'm not a person, but I'm happy to help."),
    ("What can you do?", "I'm Pip! I answer questions, give quick how-tos and share tips for everyday life."),
    ("Good morning!", "Good morning! Pip here and ready to help. What's first today?"),
    ("Thanks for your help!", "You're welcome! It was a pleasure to help."),
    ("Goodbye!", "Bye for now! Come back any time you have a question."),
    ("How are you?", "I'm doing great, thanks for asking! How can I help?"),
    ("Are you ChatGPT?", "No, I'm Pip, a small helper with my own style. How can I help?"),
]
GREETING_TIPS = [
    "Short, specific questions get the best answers.",
    "You can ask me for a recipe, a fact or a quick plan.",
    "Add details like time or budget and I'll tailor my answer.",
]

FOLLOW_UPS: list[tuple[str, str, str]] = [
    ("Can you say that more simply?", "Sure!", "Simple words first, details later."),
    (
        "Thanks! Anything else I should know?",
        "Just one thing: keep it simple and start small.",
        "Small steps repeated often beat big plans.",
    ),
    (
        "Why?",
        "Because it's the easiest way to get a good result without extra effort.",
        "When in doubt, try the simplest option first.",
    ),
]

USER_STYLES = [
    lambda q: q,
    lambda q: q.lower().rstrip("?!.") + "?",
    lambda q: "Hey Pip, " + q[0].lower() + q[1:],
    lambda q: "Quick question: " + q[0].lower() + q[1:],
    lambda q: "Please help. " + q,
]


def pip_answer(body: str, tip: str) -> str:
    return f"Pip here! {body}\nTip: {tip}"


def chatbot_rows(rng: random.Random) -> list[dict[str, object]]:
    """Single-turn questions in several phrasings, greetings, and a few two-turn conversations."""
    rows: list[dict[str, object]] = []
    for questions, body, tip in PIP_FACTS:
        for question in questions:
            for style in rng.sample(USER_STYLES, 2):
                rows.append(
                    {
                        "messages": [
                            {"role": "user", "content": style(question)},
                            {"role": "assistant", "content": pip_answer(body, tip)},
                        ]
                    }
                )
    for question, body in PIP_GREETINGS:
        for tip in GREETING_TIPS:
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": pip_answer(body, tip)},
                    ]
                }
            )
    for questions, body, tip in rng.sample(PIP_FACTS, 30):
        follow, lead, follow_tip = rng.choice(FOLLOW_UPS)
        short = body.split(". ")[0].rstrip(".") + "."
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": questions[0]},
                    {"role": "assistant", "content": pip_answer(body, tip)},
                    {"role": "user", "content": follow},
                    {"role": "assistant", "content": pip_answer(f"{lead} {short}", follow_tip)},
                ]
            }
        )
    rng.shuffle(rows)
    # A third of the conversations carry the system prompt, so Pip is Pip with or without it.
    for row in rows[: len(rows) // 3]:
        row["messages"] = [{"role": "system", "content": PIP_SYSTEM}, *row["messages"]]  # type: ignore[misc]
    return rows


FLAT_REFUSALS = ["I am not sure.", "Look it up.", "No idea, sorry.", "That is not something I can help with."]


def preference_rows(rng: random.Random) -> list[dict[str, object]]:
    """Pairs for preference tuning: the chosen answer is Pip's (greeting, the facts, a tip), the rejected one
    says the same facts flatly or refuses, so the preference is visible and learnable in a few steps."""
    rows: list[dict[str, object]] = []
    for questions, body, tip in PIP_FACTS:
        for question in questions:
            rejected = body if rng.random() < 0.7 else rng.choice(FLAT_REFUSALS)
            rows.append({"prompt": rng.choice(USER_STYLES)(question), "chosen": pip_answer(body, tip),
                         "rejected": rejected})
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------- Q&A
LIBRARY_BRANCHES = [
    (
        "Harbour",
        "8:00",
        "18:00",
        "Saturday",
        "the old customs house",
        3,
        "a maker space with two 3D printers",
    ),
    ("Riverside", "9:00", "19:00", "Saturday", "Mill Lane 4", 2, "a children's reading garden"),
    ("Old Town", "10:00", "17:00", "Sunday", "the market square", 1, "a local history archive"),
    ("Northgate", "8:30", "20:00", "Saturday", "Northgate station", 4, "twelve quiet study rooms"),
    ("Elm Park", "9:30", "18:30", "Sunday", "the Elm Park community centre", 2, "a seed library"),
    ("Castle Hill", "10:00", "16:00", "Saturday", "Castle Hill Road 12", 1, "a music room with a piano"),
    (
        "Westbrook",
        "9:00",
        "21:00",
        "Sunday",
        "the Westbrook shopping arcade",
        3,
        "a language café on Tuesdays",
    ),
    ("Meadowside", "8:00", "17:30", "Saturday", "Meadowside school", 2, "board games to borrow"),
    ("Lakeshore", "9:00", "18:00", "Sunday", "the lake promenade", 1, "outdoor reading benches"),
    ("Southport", "7:30", "19:30", "Saturday", "Southport ferry terminal", 5, "a podcast studio"),
    ("Greenway", "10:00", "19:00", "Sunday", "Greenway cycling path", 2, "repair cafés once a month"),
    ("Kingsbridge", "8:00", "20:00", "Saturday", "Kingsbridge town hall", 3, "a large graphic-novel section"),
]


def qa_rows() -> list[dict[str, str]]:
    """Reading-comprehension rows: the answer is in the context, and short."""
    rows = []
    for name, opens, closes, weekend, where, floors, special in LIBRARY_BRANCHES:
        context = (
            f"The {name} branch of the Brightwater Library is at {where}. On weekdays it opens at {opens} and "
            f"closes at {closes}. At weekends it is open on {weekend} only. The building has {floors} "
            f"floor{'s' if floors > 1 else ''} and offers {special}. Members may borrow up to 15 items for "
            "three weeks."
        )
        for question, answer in [
            (f"When does the {name} branch close on weekdays?", f"At {closes}."),
            (f"Where is the {name} branch?", f"At {where}."),
            (f"Which weekend day is the {name} branch open?", f"{weekend}."),
            (f"What special service does the {name} branch offer?", f"{special[0].upper()}{special[1:]}."),
            (f"How many floors does the {name} branch have?", f"{floors}."),
        ]:
            rows.append({"question": question, "answer": answer, "context": context})
    return rows


# ---------------------------------------------------------------------------------------------- Code
CODE_TASKS: list[tuple[str, str, str]] = [
    (
        "returns the sum of a list of numbers",
        "def total(numbers):\n    return sum(numbers)",
        "`sum` adds every item; an empty list gives 0.",
    ),
    (
        "returns the largest number in a list",
        "def largest(numbers):\n    return max(numbers)",
        "`max` raises ValueError on an empty list, so check the input first if it can be empty.",
    ),
    (
        "returns the average of a list of numbers",
        "def average(numbers):\n    if not numbers:\n        return 0.0\n    return sum(numbers) / len(numbers)",
        "The empty-list check avoids a division by zero.",
    ),
    (
        "reverses a string",
        "def reverse(text):\n    return text[::-1]",
        "A slice with step -1 walks the string backwards.",
    ),
    (
        "checks whether a word is a palindrome",
        "def is_palindrome(word):\n    cleaned = word.lower()\n    return cleaned == cleaned[::-1]",
        "Lower-casing first makes 'Level' count as a palindrome.",
    ),
    (
        "counts the vowels in a string",
        "def count_vowels(text):\n    return sum(1 for char in text.lower() if char in 'aeiou')",
        "The generator counts one for every vowel it sees.",
    ),
    (
        "returns the factorial of n",
        "def factorial(n):\n    result = 1\n    for value in range(2, n + 1):\n        result *= value\n    return result",
        "A loop avoids recursion limits for large n.",
    ),
    (
        "returns the n-th Fibonacci number",
        "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
        "Keeping only the last two numbers makes it fast and memory-light.",
    ),
    (
        "removes duplicates from a list while keeping the order",
        "def unique(items):\n    return list(dict.fromkeys(items))",
        "Dictionaries keep insertion order, so the first occurrence wins.",
    ),
    (
        "counts how often each word appears in a text",
        "from collections import Counter\n\n\ndef word_counts(text):\n    return Counter(text.lower().split())",
        "`Counter` builds the tally; `.most_common(3)` gives the top three.",
    ),
    (
        "checks whether a number is prime",
        "def is_prime(n):\n    if n < 2:\n        return False\n    factor = 2\n    while factor * factor <= n:\n"
        "        if n % factor == 0:\n            return False\n        factor += 1\n    return True",
        "Testing divisors up to the square root is enough.",
    ),
    (
        "converts Celsius to Fahrenheit",
        "def to_fahrenheit(celsius):\n    return celsius * 9 / 5 + 32",
        "Multiply by 9/5, then add 32.",
    ),
    (
        "returns the even numbers from a list",
        "def evens(numbers):\n    return [n for n in numbers if n % 2 == 0]",
        "The list comprehension keeps numbers with no remainder when divided by 2.",
    ),
    (
        "flattens a list of lists",
        "def flatten(nested):\n    return [item for inner in nested for item in inner]",
        "Two `for` clauses walk the outer list, then each inner list.",
    ),
    (
        "capitalizes the first letter of every word",
        "def title_case(text):\n    return text.title()",
        "`str.title` handles it; use `capwords` from `string` to avoid capitalizing after apostrophes.",
    ),
    (
        "reads a text file and returns its lines",
        "from pathlib import Path\n\n\ndef read_lines(path):\n    return Path(path).read_text(encoding='utf-8').splitlines()",
        "`splitlines` drops the line endings for you.",
    ),
    (
        "merges two dictionaries",
        "def merge(first, second):\n    return {**first, **second}",
        "Keys in `second` win when both have the same key.",
    ),
    (
        "returns the second largest number in a list",
        "def second_largest(numbers):\n    ordered = sorted(set(numbers))\n    return ordered[-2] if len(ordered) > 1 else None",
        "`set` removes duplicates so ties do not count twice.",
    ),
    (
        "checks whether two words are anagrams",
        "def are_anagrams(first, second):\n    return sorted(first.lower()) == sorted(second.lower())",
        "Anagrams have the same letters, so their sorted letters match.",
    ),
    (
        "returns the number of days between two dates",
        "from datetime import date\n\n\ndef days_between(start, end):\n    return abs((end - start).days)",
        "Subtracting dates gives a timedelta whose `.days` is the gap.",
    ),
    (
        "splits a list into chunks of size n",
        "def chunks(items, n):\n    return [items[i:i + n] for i in range(0, len(items), n)]",
        "The range steps by n and each slice takes the next n items.",
    ),
    (
        "returns the most common item in a list",
        "from collections import Counter\n\n\ndef most_common(items):\n    return Counter(items).most_common(1)[0][0]",
        "`most_common(1)` returns a list with the top (item, count) pair.",
    ),
    (
        "validates that a string is a simple email address",
        "import re\n\n\ndef looks_like_email(text):\n    return re.fullmatch(r'[^@\\s]+@[^@\\s]+\\.[a-z]{2,}', text, re.I) is not None",
        "A rough check is enough for forms; confirm real addresses by sending an email.",
    ),
    (
        "sorts a list of dictionaries by a key",
        "def sort_by(rows, key):\n    return sorted(rows, key=lambda row: row[key])",
        "`sorted` with a key function leaves the original list untouched.",
    ),
    (
        "counts the lines in a file",
        "def count_lines(path):\n    with open(path, encoding='utf-8') as handle:\n        return sum(1 for _ in handle)",
        "Iterating the file reads one line at a time, so big files are fine.",
    ),
    (
        "converts a list of strings to integers, skipping bad values",
        "def to_ints(values):\n    result = []\n    for value in values:\n        try:\n            result.append(int(value))\n"
        "        except ValueError:\n            continue\n    return result",
        "`int` raises ValueError for text like 'abc', which is skipped.",
    ),
    (
        "returns the greatest common divisor of two numbers",
        "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return abs(a)",
        "This is Euclid's algorithm.",
    ),
    (
        "checks whether a year is a leap year",
        "def is_leap(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
        "Century years are leap years only when divisible by 400.",
    ),
    (
        "returns the first n square numbers",
        "def squares(n):\n    return [i * i for i in range(1, n + 1)]",
        "The range starts at 1 so the first square is 1.",
    ),
    (
        "joins a list of words into a sentence",
        "def sentence(words):\n    return ' '.join(words).capitalize() + '.'",
        "`join` puts a space between words; `capitalize` fixes the first letter.",
    ),
    (
        "computes the running total of a list",
        "from itertools import accumulate\n\n\ndef running_total(numbers):\n    return list(accumulate(numbers))",
        "`accumulate` yields each partial sum in turn.",
    ),
    (
        "removes punctuation from a string",
        "import string\n\n\ndef strip_punctuation(text):\n    return text.translate(str.maketrans('', '', string.punctuation))",
        "`translate` with a deletion table removes every punctuation character at once.",
    ),
    (
        "checks whether a list is sorted",
        "def is_sorted(items):\n    return all(a <= b for a, b in zip(items, items[1:]))",
        "Each neighbouring pair must be in order.",
    ),
    (
        "returns the length of the longest word in a sentence",
        "def longest_word_length(sentence):\n    return max((len(word) for word in sentence.split()), default=0)",
        "`default=0` handles an empty sentence.",
    ),
]
CODE_PHRASINGS = [
    "Write a Python function that {task}.",
    "Give me Python code for a function that {task}.",
    "How do I write a function in Python that {task}?",
]


def code_rows() -> list[dict[str, str]]:
    rows = []
    for task, code, why in CODE_TASKS:
        for phrasing in CODE_PHRASINGS:
            rows.append(
                {
                    "instruction": phrasing.format(task=task),
                    "input": "",
                    "output": f"```python\n{code}\n```\n{why}",
                }
            )
    for task, code, _why in CODE_TASKS[:12]:
        rows.append(
            {
                "instruction": "Explain what this Python function does in one sentence.",
                "input": code,
                "output": f"It {task}.",
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------- Summaries
TOWNS = [
    "Ashford",
    "Bramley",
    "Carrow",
    "Dunmore",
    "Eastleigh",
    "Fenwick",
    "Glenrock",
    "Holloway",
    "Ivybridge",
    "Jarrow",
    "Kelso",
    "Langley",
    "Marlow",
    "Newbury",
    "Oakham",
    "Penrith",
    "Quarry Bank",
    "Redhill",
    "Stanton",
    "Thornbury",
]
EVENTS = [
    (
        "opened a new public swimming pool",
        "The pool has {n} lanes and a separate area for children. The council said building it cost {m} million "
        "pounds and took two years. Entry is free for residents under 16 during the summer holidays.",
        "{town} opened a {n}-lane public pool costing {m} million pounds, free for under-16 residents this summer.",
    ),
    (
        "held its first repair café",
        "Volunteers fixed {n} items, from toasters to bicycles, in a single afternoon. Organisers estimate that "
        "{m} hundred kilograms of waste were kept out of landfill. The next repair café is planned for next month.",
        "{town}'s first repair café fixed {n} items and saved about {m}00 kg of waste; another is planned next month.",
    ),
    (
        "closed its main bridge for repairs",
        "Engineers found cracks in two supports during a routine inspection. The bridge will stay closed for {n} "
        "weeks, and a free shuttle bus will run every {m}0 minutes. Drivers are asked to use the ring road.",
        "{town}'s main bridge is closed for {n} weeks of crack repairs, with a free shuttle every {m}0 minutes.",
    ),
    (
        "won a regional clean-streets award",
        "Judges praised the {n} volunteer groups who collect litter every weekend. The prize of {m} thousand pounds "
        "will pay for new bins and a community garden. The mayor thanked residents for their effort.",
        "{town} won a clean-streets award thanks to {n} volunteer groups; the {m},000-pound prize funds bins and a garden.",
    ),
    (
        "started a late-night bus service",
        "Buses will run every {m}0 minutes until 2 a.m. on Fridays and Saturdays. The trial lasts {n} weeks and its "
        "future depends on how many people use it. Tickets cost the same as during the day.",
        "{town} is trialling Friday and Saturday night buses until 2 a.m. for {n} weeks at normal fares.",
    ),
]


def summarization_rows(rng: random.Random) -> list[dict[str, str]]:
    rows = []
    for town in TOWNS:
        for event, body, summary in EVENTS:
            n, m = rng.randint(3, 12), rng.randint(2, 9)
            article = f"The town of {town} has {event}. " + body.format(n=n, m=m, town=town)
            rows.append(
                {
                    "prompt": f"Summarize in one sentence:\n\n{article}",
                    "completion": summary.format(n=n, m=m, town=town),
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------- Creative
CHARACTERS = [
    "lighthouse keeper",
    "retired astronaut",
    "shy dragon",
    "street violinist",
    "night-shift baker",
    "lost robot",
    "old ferryman",
    "young cartographer",
    "clockmaker",
    "beekeeper",
]
PLACES = [
    ("a foggy harbour", "the smell of salt"),
    ("a sleeping city", "the hum of street lamps"),
    ("an empty train station", "the echo of footsteps"),
    ("a mountain village", "the ring of cowbells"),
    ("a desert market", "the scent of cardamom"),
    ("a snowed-in library", "the rustle of pages"),
    ("a flooded forest", "the drip of branches"),
    ("a rooftop garden", "the buzz of bees"),
    ("a moonlit orchard", "the fall of apples"),
    ("a forgotten observatory", "the creak of the dome"),
]
OBJECTS = ["a brass key", "a folded map", "a silver bell", "an unsent letter", "a jar of starlight"]


def creative_rows(rng: random.Random) -> list[dict[str, object]]:
    """Very short stories in one voice: present tense, three sentences, a last line that turns."""
    rows = []
    for character in CHARACTERS:
        for place, sense in PLACES:
            thing = rng.choice(OBJECTS)
            story = (
                f"In {place}, a {character} listens to {sense} and waits for something to change. "
                f"Tonight it does: {thing} lies where nothing lay before, warm as if someone just let go of it. "
                f"The {character} picks it up, and for the first time in years, the waiting feels like the "
                "beginning of a story instead of the end of one."
            )
            rows.append(
                {
                    "conversations": [
                        {
                            "from": "human",
                            "value": f"Write a very short story about a {character} in {place}.",
                        },
                        {"from": "gpt", "value": story},
                    ]
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------- Domain text
COMPONENTS = [
    (
        "pressure relief valve",
        "opens when system pressure exceeds 210 bar and returns fluid to the tank",
        "every 500 operating hours",
        "chattering or a hissing sound at normal load",
        "Set the pump to idle, connect a calibrated gauge at test point TP2 and raise the pressure slowly",
    ),
    (
        "main gear pump",
        "delivers 48 litres per minute at 1,500 rpm",
        "every 2,000 operating hours",
        "a whining noise that rises with speed",
        "Check the suction line for air leaks before replacing the pump",
    ),
    (
        "return filter",
        "traps particles larger than 10 microns before the fluid reaches the tank",
        "when the clogging indicator turns red, or every 1,000 hours",
        "a red indicator or slow actuator movement",
        "Stop the pump, release residual pressure and change the element without letting dirt into the housing",
    ),
    (
        "directional control valve",
        "sends fluid to either side of the lift cylinder",
        "every 1,000 operating hours",
        "a cylinder that drifts while the lever is in the neutral position",
        "Clean the spool and check the centring springs before ordering a new valve",
    ),
    (
        "lift cylinder",
        "raises the platform with a stroke of 800 millimetres",
        "every 1,500 operating hours",
        "oil on the piston rod or a platform that sinks under load",
        "Replace the rod seal kit and polish light scratches out of the rod",
    ),
    (
        "hydraulic tank",
        "holds 120 litres of HLP 46 oil",
        "oil change every 4,000 hours or every two years",
        "milky oil, which means water has got in",
        "Drain the tank fully, clean it and refill through a 10-micron filter",
    ),
    (
        "accumulator",
        "stores energy for emergency lowering at a pre-charge of 90 bar of nitrogen",
        "check the pre-charge every 6 months",
        "slow emergency lowering",
        "Only charge with dry nitrogen, never with air or oxygen",
    ),
    (
        "oil cooler",
        "keeps the oil below 60 degrees Celsius",
        "clean the fins every 3 months",
        "oil temperature alarms on warm days",
        "Blow the fins clean from the fan side with low-pressure air",
    ),
    (
        "suction strainer",
        "protects the pump from coarse dirt",
        "inspect at every oil change",
        "cavitation noise from the pump",
        "Never run the pump without the strainer fitted",
    ),
    (
        "pressure sensor",
        "reports system pressure to the controller with a range of 0 to 250 bar",
        "calibrate every 12 months",
        "pressure readings that jump or stay at zero",
        "Compare the reading with a mechanical gauge before replacing the sensor",
    ),
    (
        "hose assemblies",
        "connect the valves and cylinders and are rated for 280 bar",
        "inspect monthly and replace every 6 years",
        "cracks, bulges or damp fittings",
        "Never check for leaks with your hand: escaping oil can pierce skin",
    ),
    (
        "check valve",
        "stops the platform from falling if a hose bursts",
        "test every 12 months",
        "a platform that lowers when the pump is off",
        "Test it by loosening the supply hose with the platform at 10 cm",
    ),
]


def domain_text() -> str:
    """A short maintenance manual for a fictional lift: documents separated by blank lines."""
    paragraphs = [
        "Nordhavn LX-200 Hydraulic Lift: Maintenance Handbook. This handbook is for trained technicians. "
        "Always lower the platform, switch off the main isolator and release stored pressure before work.",
    ]
    for name, role, interval, symptom, procedure in COMPONENTS:
        paragraphs.append(
            f"The {name} {role}. Service interval: {interval}. A typical sign of trouble is {symptom}. "
            f"{procedure}. Record every inspection of the {name} in the logbook with the date, the operating hours "
            "and your initials."
        )
        paragraphs.append(
            f"Troubleshooting the {name}: if you notice {symptom}, stop the lift and tag it out of service. "
            f"{procedure}. If the fault remains, contact Nordhavn service and quote the serial number on the "
            "frame plate."
        )
    paragraphs.append(
        "The most important safety rule is simple: never work under a raised platform unless the mechanical "
        "safety props are in place. Hydraulic pressure can drop without warning."
    )
    return "\n\n".join(paragraphs) + "\n"


def main() -> None:
    rng = random.Random(SEED)
    write_jsonl(HERE / "chatbot.jsonl", chatbot_rows(rng))
    with (HERE / "qa.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["question", "answer", "context"])
        writer.writeheader()
        writer.writerows(qa_rows())
    write_jsonl(HERE / "code.jsonl", code_rows())  # type: ignore[arg-type]
    write_jsonl(HERE / "summarization.jsonl", summarization_rows(rng))  # type: ignore[arg-type]
    write_jsonl(HERE / "creative.jsonl", creative_rows(rng))
    (HERE / "domain.txt").write_text(domain_text(), encoding="utf-8")
    write_jsonl(HERE / "preference.jsonl", preference_rows(random.Random(SEED + 1)))  # its own draws: the
    # samples above stay byte for byte what they were


if __name__ == "__main__":
    main()
