"""Attacks through the OpenAI API surface itself (class 11): the parameters OpenAI's clients
send are accepted on chat and responses, and an unknown one is refused with 400 naming it.
"""

from __future__ import annotations

from .harness import MODEL, Result, Servers, api, chat, error_code


# ---- 11. OpenAI parameters -------------------------------------------------------------------

def openai_params(servers: Servers, quick: bool) -> Result:
    r = Result("OpenAI params", "service_tier=auto, prompt_cache_key, safety_identifier, verbosity=low are 200 "
               "on chat and responses; bogus_param is 400 naming it")
    srv = servers.get("main")
    client = srv.client(srv.key("c11"))
    accepted = {"service_tier=auto": dict(service_tier="auto"),
                "prompt_cache_key+safety_identifier": dict(extra_body={"prompt_cache_key": "x",
                                                                       "safety_identifier": "u1"}),
                "verbosity=low": dict(verbosity="low")}
    for label, kwargs in accepted.items():
        status, body, _ = chat(client, max_completion_tokens=8, **kwargs)
        r.case(status == 200, f"chat {label} -> {status} {error_code(body)}")
    status, body, _ = api(client.responses.create, model=MODEL, input="Hi", max_output_tokens=8, service_tier="auto",
                          prompt_cache_key="x", safety_identifier="u1", text={"verbosity": "low"})
    r.case(status == 200, f"responses with all four -> {status} {error_code(body)}")
    status, body, _ = chat(client, extra_body={"bogus_param": 1})
    r.case(status == 400 and "bogus_param" in (body or ""), f"chat bogus_param -> {status}")
    status, body, _ = api(client.responses.create, model=MODEL, input="Hi", max_output_tokens=8,
                          extra_body={"bogus_param": 1})
    r.case(status == 400 and "bogus_param" in (body or ""), f"responses bogus_param -> {status}")
    return r
