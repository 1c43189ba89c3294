"""Short bank questions of mixed length (a few words to a few dozen tokens), for the text
encoder tests."""

TEXTS = [
    "hi",
    "my card has still not arrived after two weeks, what should i do about it now?",
    "top up failed",
    "why was i charged a fee for a transfer to my friend's account in another currency",
    "pin blocked",
    "how do i change my address",
    "the atm kept my card",
    "is there a limit on how much i can top up in one day with apple pay or google pay",
]
