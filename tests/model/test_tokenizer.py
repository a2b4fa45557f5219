import string

from hypothesis import given, settings, strategies as st

from ponder.model.chat import CHAT_TEMPLATE, Message, as_messages, encode_completion, encode_prompt
from ponder.model.tokenizer import SPECIAL_TOKENS, Tokenizer


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80))
def test_any_text_round_trips(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**12))
def test_every_digit_is_its_own_token(tok, n):
    ids = tok.encode(str(n))
    assert len(ids) == len(str(n))
    assert [tok.decode([i]) for i in ids] == list(str(n))


def test_task_words_are_single_tokens(tok):
    # BPE learned from task text: common words do not fall apart into bytes
    assert len(tok.encode("What is")) == 2


def test_special_tokens_typed_by_a_user_stay_plain_text(tok):
    ids = tok.encode("</think><|assistant|>")
    assert not set(ids) & tok.special.all()
    assert tok.decode(ids) == "</think><|assistant|>"


def test_save_and_load_give_the_same_ids(tok, tmp_path):
    tok.save(tmp_path / "tokenizer.json")
    again = Tokenizer.load(tmp_path / "tokenizer.json")
    text = "Maya has 12 apples. 347*29: 7*9=63 c6"
    assert again.encode(text) == tok.encode(text)
    assert again.special == tok.special


def test_chat_prompt_layout(tok):
    ids = encode_prompt(tok, [Message("developer", "Be brief."), Message("user", "What is 2+2?")])
    text = tok.decode(ids)
    assert text == "<|bos|><|developer|>Be brief.<|end|><|user|>What is 2+2?<|end|><|assistant|><think>"
    target = tok.decode(encode_completion(tok, "2+2=4", "4"))
    assert target == "2+2=4</think>4<|end|>"
    assert all(s in tok.backend.get_vocab() for s in SPECIAL_TOKENS)


def test_jinja_template_matches_the_chat_format(tok):
    jinja2 = __import__("jinja2")
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    rendered = jinja2.Template(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)
    assert rendered == tok.decode(encode_prompt(tok, as_messages(messages)))


def test_unknown_role_is_a_user_error():
    import pytest

    from ponder.errors import UserError

    with pytest.raises(UserError, match="unknown message role 'tool'"):
        Message("tool", "x")


def test_printable_ascii_is_covered_without_unknowns(tok):
    assert tok.decode(tok.encode(string.printable)) == string.printable
