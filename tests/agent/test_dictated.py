"""How much of a phone number or a confirmation code the caller's words so far amount to, as the
transcriber may write them: digits, digit words, letters, the phonetic alphabet, 'double'."""

from __future__ import annotations

import pytest

from agent.dictated import (
    Asked,
    Heard,
    asked_for,
    code_characters,
    judge,
    names_heard,
    spelled_letters,
)


@pytest.mark.parametrize(
    ("said", "heard"),
    [
        ("five oh three", Heard.PART),
        ("five oh three, five five five", Heard.PART),
        ("five oh three five five five oh one eight seven", Heard.WHOLE),
        ("503-555-0187", Heard.WHOLE),
        ("(503) 555 01 87", Heard.WHOLE),
        ("five oh three five five five double oh one", Heard.PART),
        ("1 503 555 018", Heard.PART),  # the trunk prefix and nine digits: one more to come
        ("1 503 555 0187", Heard.WHOLE),
        ("+44 20 7946 0123", Heard.WHOLE),
        ("it's five oh three", Heard.PART),
        ("I'd rather not say", Heard.OTHER),
        ("five oh three five five five oh one eight seven two two", Heard.OTHER),  # too long: not ours to judge
    ],
)
def test_a_phone_number_is_whole_once_valid_in_the_business_country(said: str, heard: Heard) -> None:
    assert judge(Asked.PHONE, said, "US") is heard


@pytest.mark.parametrize("asked", [Asked.PHONE, Asked.CODE, Asked.EMAIL])
@pytest.mark.parametrize(
    "said",
    ["my number is", "yeah, so it's", "um", "the code is, uh", "let me find it", "hold on", "one sec...",
     "It's"],  # fmt: skip
)
def test_words_leading_into_it_before_any_of_it_are_part_of_it(asked: Asked, said: str) -> None:
    """A pause after "my number is" is the caller finding it, not the end of their turn."""
    assert judge(asked, said, "US") is Heard.PART


@pytest.mark.parametrize("asked", [Asked.PHONE, Asked.CODE, Asked.EMAIL])
@pytest.mark.parametrize("said", ["yes", "sure", "no", "I'd rather not say", "I don't have one", "this one is fine"])
def test_an_answer_that_is_not_the_value_is_not_waited_for(asked: Asked, said: str) -> None:
    assert judge(asked, said, "US") is Heard.OTHER


@pytest.mark.parametrize(("said", "heard"), [
    ("cinco cero tres", Heard.PART), ("cinco cero tres, cinco cinco cinco, cero uno ocho siete", Heard.WHOLE),
    ("cinq zéro trois, cinq cinq cinq, zéro un huit sept", Heard.WHOLE),
    ("mi número es", Heard.PART), ("cinco cero tres, eh", Heard.PART), ("a ver, un momento", Heard.PART),
    ("déjeme ver", Heard.PART), ("c'est", Heard.PART), ("euh", Heard.PART), ("attendez, un instant", Heard.PART),
    ("sí", Heard.OTHER), ("bueno", Heard.OTHER), ("oui", Heard.OTHER), ("d'accord", Heard.OTHER),
    ("it's for my son", Heard.OTHER),  # "son" is no Spanish lead-in here
])  # fmt: skip
def test_a_number_said_in_spanish_or_french_is_judged_as_in_english(said: str, heard: Heard) -> None:
    assert judge(Asked.PHONE, said, "US") is heard


def test_a_code_said_in_spanish_or_french_is_counted_as_in_english() -> None:
    assert judge(Asked.CODE, "k siete p", "US") is Heard.PART
    assert judge(Asked.CODE, "k siete p cuatro m dos", "US") is Heard.WHOLE
    assert code_characters("k sept p quatre m deux") == "k7p4m2"
    assert code_characters("neuf r a n, un w") == "9ran1w"  # French "un" among the characters
    assert judge(Asked.CODE, "neuf r a n, un w", "US") is Heard.WHOLE
    assert code_characters("c'est un k sept p quatre m deux") == "k7p4m2"  # "un" the article


def test_an_email_address_said_in_spanish_or_french_is_whole_at_its_domain() -> None:
    assert judge(Asked.EMAIL, "o k a arroba n g u", "US") is Heard.PART
    assert judge(Asked.EMAIL, "o k a arroba n g u punto c o m", "US") is Heard.WHOLE
    assert judge(Asked.EMAIL, "o k a arobase n g u point f r", "US") is Heard.WHOLE
    assert judge(Asked.EMAIL, "oka arroba hotmail punto es", "US") is Heard.WHOLE


def test_a_number_said_in_pairs_is_judged_by_its_digits() -> None:
    assert judge(Asked.PHONE, "five oh three, five five five, twenty-one", "US") is Heard.PART
    assert judge(Asked.PHONE, "five oh three, five five five, twenty-one fifty", "US") is Heard.WHOLE
    assert judge(Asked.PHONE, "zéro six, douze, trente-quatre", "FR") is Heard.PART
    assert judge(Asked.PHONE, "zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit", "FR") is Heard.WHOLE


def test_a_number_of_another_country_is_judged_by_its_own_length() -> None:
    assert judge(Asked.PHONE, "oh two oh seven nine four six", "GB") is Heard.PART
    assert judge(Asked.PHONE, "oh two oh seven nine four six oh one two three", "GB") is Heard.WHOLE


@pytest.mark.parametrize(
    ("said", "chars"),
    [
        ("k seven p", "k7p"),
        ("k seven p four m two", "k7p4m2"),
        ("K7P-4M2", "k7p4m2"),
        ("it's k7p", "k7p"),
        ("b as in bravo, double four", "b44"),
        ("kilo seven papa", "k7p"),
        ("yes, I have one", ""),  # words outnumber the characters: not a code
    ],
)
def test_a_code_is_counted_one_spoken_character_at_a_time(said: str, chars: str) -> None:
    assert code_characters(said) == chars


def test_a_code_is_whole_at_six_characters() -> None:
    assert judge(Asked.CODE, "k seven p", "US") is Heard.PART
    assert judge(Asked.CODE, "k seven p four m two", "US") is Heard.WHOLE
    assert judge(Asked.CODE, "k seven p four m two x", "US") is Heard.OTHER
    assert judge(Asked.CODE, "I don't have it", "US") is Heard.OTHER


def test_open_answers_are_never_judged_whole() -> None:
    assert judge(Asked.OPEN, "one hundred thirty five main street", "US") is Heard.OTHER


@pytest.mark.parametrize(
    ("said", "heard"),
    [
        ("o k a", Heard.PART),
        ("o k a at n g u", Heard.PART),
        ("o k a at n g u dot c o m", Heard.WHOLE),  # spelled, as the corpus's caller says it
        ("jane.doe@example.com", Heard.WHOLE),  # as a transcriber may write it
        ("jane at example dot co", Heard.PART),  # 'dot co' may go on: 'dot co dot uk'
        ("jane at example dot co dot uk", Heard.WHOLE),
        ("I don't have email", Heard.OTHER),
    ],
)
def test_an_email_address_is_whole_once_it_ends_in_a_known_domain(said: str, heard: Heard) -> None:
    assert judge(Asked.EMAIL, said, "US") is heard


def test_what_the_question_asks_for_is_the_last_question() -> None:
    assert asked_for("Thanks. What's your email address?") is Asked.EMAIL
    assert asked_for("Got it, your email is on file. What's the best number to reach you?") is Asked.PHONE


KOWALSKI = names_heard("Thanks, Anna. How do you spell Kowalski?", [])


def test_a_spelling_is_of_the_names_the_call_has_heard() -> None:
    assert KOWALSKI == {"anna", "kowalski"}
    # the caller said it in the turn before a question that does not name it
    assert names_heard("Could you spell your last name for me?", ["Yes, it's Kowalski."]) == {"kowalski"}
    assert names_heard("Could you spell your last name for me?", []) == frozenset()
    assert asked_for("Could you spell your last name for me?") is Asked.SPELLING
    assert asked_for("How do you spell Kowalski?") is Asked.SPELLING


@pytest.mark.parametrize(
    ("said", "letters"),
    [
        ("k o w", "kow"),
        ("K-O-W-A-L-S-K-I", "kowalski"),  # as a transcriber may write it
        ("my last name is K, O, W", "kow"),  # words around the letters do not hide them
        ("k o w a double l", "kowall"),
        ("n as in nancy, g u", "ngu"),
        ("a n n a", "anna"),  # 'a' and 'i' beside other letters are letters
        ("I think it's a k", "ak"),
        ("I need a plumber", ""),
    ],
)
def test_spelled_letters_are_read_among_other_words(said: str, letters: str) -> None:
    assert spelled_letters(said) == letters


@pytest.mark.parametrize(
    ("said", "heard"),
    [
        ("k o w", Heard.PART),
        ("k o w, a l s", Heard.PART),
        ("c o w a l", Heard.PART),  # one letter off the name as heard: still on its way
        ("k o w a l s k i", Heard.WHOLE),
        ("a n n a", Heard.WHOLE),
        ("c o w a l s k i", Heard.OTHER),  # all of it, not the name heard: the dictation delay decides
        ("k o w a l s k i e", Heard.OTHER),
        ("s m i t h", Heard.OTHER),  # a name the call has not heard
        ("it's", Heard.PART),  # leading into it
        ("it's the same as my first name", Heard.OTHER),
    ],
)
def test_a_spelling_is_whole_once_its_letters_spell_a_name_heard(said: str, heard: Heard) -> None:
    assert judge(Asked.SPELLING, said, "US", KOWALSKI) is heard
