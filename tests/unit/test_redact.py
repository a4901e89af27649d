"""``syncmaster_ray.redact``: URL passwords, ``password=...`` pairs and literal secrets are masked."""

from __future__ import annotations

import pytest

from syncmaster_ray.redact import MASK, redact

URL_PASSWORDS = [
    ("postgresql://etl:hunter2@db:5432/x", "postgresql://etl:***@db:5432/x"),
    ("postgresql+asyncpg://syncmaster:s3cr3t@db/sm", "postgresql+asyncpg://syncmaster:***@db/sm"),
    ("amqp://guest:guest@rabbitmq:5672/", "amqp://guest:***@rabbitmq:5672/"),
    ("jdbc:postgresql://u:p@h/d", "jdbc:postgresql://u:***@h/d"),
    ("a redis://:onlypass@cache:6379/0 b", "a redis://:***@cache:6379/0 b"),
    ("two: http://a:x1@h1/ and http://b:y2@h2/", "two: http://a:***@h1/ and http://b:***@h2/"),
]
WITHOUT_SECRETS = [  # unchanged
    ("http://ray-head:8265/#/jobs/x", "http://ray-head:8265/#/jobs/x"),
    ("postgresql://user@db:5432/x", "postgresql://user@db:5432/x"),
    ("see https://docs.example.com/a:b", "see https://docs.example.com/a:b"),
    ("relation \"public.x\" does not exist", "relation \"public.x\" does not exist"),
]
PASSWORD_PAIRS = [
    ("password=hunter2", "password=***"),
    ("PASSWORD = hunter2 and more", "PASSWORD = *** and more"),
    ("user=etl;password=hunter2;ssl=true", "user=etl;password=***;ssl=true"),
    ("?user=etl&password=hunter2&ssl=true", "?user=etl&password=***&ssl=true"),
    ("password: 'hunter2'", "password: '***'"),
    ('password="hunter2"', 'password="***"'),
    ("pwd=abc, next", "pwd=***, next"),
    ("passwd=abc", "passwd=***"),
    ("secret_key=abcdef", "secret_key=***"),
    ("access_key=AKIA123", "access_key=***"),
    ("token: eyJhbGciOi", "token: ***"),
    ("Options(password=abc)", "Options(password=***)"),
]


@pytest.mark.parametrize(("text", "expected"), URL_PASSWORDS + WITHOUT_SECRETS + PASSWORD_PAIRS)
def test_url_passwords_and_password_pairs_are_masked_and_nothing_else(text, expected):
    assert redact(text) == expected


def test_literal_secrets_are_masked_longest_first():
    text = "key=ABCDEF0123 prefix ABCDEF and the long ABCDEF0123XYZ"
    out = redact(text, ["ABCDEF", "ABCDEF0123XYZ"])
    assert "ABCDEF" not in out
    assert "XYZ" not in out  # the long secret was masked whole, not as ABCDEF + XYZ
    assert out == f"key={MASK}0123 prefix {MASK} and the long {MASK}"


def test_short_and_empty_literal_secrets_are_ignored():
    assert redact("a ab abc", ["", "a", "ab"]) == "a ab abc"
    assert redact("a ab abc", ["abc"]) == "a ab ***"


def test_literal_secrets_accept_any_iterable_and_duplicates():
    assert redact("xx s3cret yy s3cret", (s for s in ["s3cret", "s3cret"])) == "xx *** yy ***"


def test_literal_secret_inside_url_is_masked():
    out = redact("postgresql://etl:p%40ss@db/x and p%40ss", ["p%40ss"])
    assert "p%40ss" not in out


@pytest.mark.parametrize("text", ["{'user': 'etl', 'password': 'hunter2'}", '{"password": "hunter2"}'])
def test_password_in_dict_or_json_is_masked(text):
    assert "hunter2" not in redact(text)


def test_quoted_password_with_spaces_is_masked_whole():
    out = redact("password='correct horse battery'")
    assert "horse" not in out
    assert "battery" not in out
