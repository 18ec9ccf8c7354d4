//! The typed reader of plain OpenAI requests against the general reader: what it accepts, it
//! reads exactly as the general reader does; everything else it leaves to the general reader.

use crate::provider::Dialect::OpenAi;
use crate::translate::decode_request_general;
use crate::translate::openai::plain;

/// Bodies the plain reader takes: the common chat shapes.
const TAKEN: [&str; 9] = [
    r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
    r#"{"model": "smart", "max_tokens": 512, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}"#,
    r#"{"model":"m","messages":[{"role":"developer","content":"d"},{"role":"user","content":"q"},{"role":"assistant","content":"a"},{"role":"user","content":"q2"}]}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"esc \" \\ \n \u00e9 \ud83d\ude00"}],"temperature":2,"top_p":0}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":7,"n":1}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"x"}],"user":"u-1","backend":"claude","session_id":"s-1"}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":null,"stream":null,"stream_options":{"include_usage":null},"user":null}"#,
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":0.7,\"top_p\":1.0}\n",
];

/// Bodies it declines: other shapes, and everything the door refuses.
const DECLINED: [&str; 20] = [
    r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"hi","name":"ann"}]}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[]}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":"x"}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"presence_penalty":0}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5.0}"#,
    r#"{"model":"m","messages":[{"role":"tool","content":"r","tool_call_id":"c"}]}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true,"x":1}}"#,
    r#"{"model":"","messages":[{"role":"user","content":"hi"}]}"#,
    r#"{"model":"m","messages":[]}"#,
    r#"{"model":"m","messages":[{"role":"assistant","content":"a"}]}"#,
    r#"{"model":"m","messages":[{"role":"user","content":""}]}"#,
    r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":2.5}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"x"}],"top_p":-0.1}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}"#,
    r#"{"model":"m","model":"n","messages":[{"role":"user","content":"x"}]}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"x"}]} x"#,
    r#"{"model":"m","messages":[{"role":"user","content":null}]}"#,
];

#[test]
fn plain_requests_read_as_the_general_reader_reads_them() {
    for body in TAKEN {
        let fast = plain::decode(body.as_bytes());
        assert!(fast.is_some(), "the plain reader takes {body}");
        let general = decode_request_general(OpenAi, body.as_bytes());
        assert_eq!(
            fast.map(Ok),
            Some(general),
            "the same Chat from both readers for {body}"
        );
    }
}

/// A declined body goes to the general reader (`decode_request` falls back by construction).
#[test]
fn other_requests_go_to_the_general_reader() {
    for body in DECLINED {
        assert!(
            plain::decode(body.as_bytes()).is_none(),
            "the plain reader declines {body}"
        );
    }
}

#[test]
fn the_golden_request_takes_the_general_path_and_a_plain_one_the_fast_path() {
    let golden = super::fixture!("openai_request.json");
    assert!(
        plain::decode(golden.as_bytes()).is_none(),
        "the golden request has tools and parts: the general reader's"
    );
    let bench = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/load/door.json"));
    assert!(
        plain::decode(bench.as_bytes()).is_some(),
        "the load bench's request is plain"
    );
}
