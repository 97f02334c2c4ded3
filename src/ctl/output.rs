//! `-o json|yaml`: objects as the API server returns them; several as
//! kubectl's `List`.

use serde_json::{Value, json};

use crate::cli::OutputFormat;

use super::CtlError;

/// kubectl's wrapper around several objects.
pub fn list(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": { "resourceVersion": "" }
    })
}

/// JSON indented by four spaces (as kubectl prints it), or YAML; ends with
/// a newline.
pub fn encode(value: &Value, format: OutputFormat) -> Result<String, CtlError> {
    match format {
        OutputFormat::Json => {
            let mut buf = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
            serde::Serialize::serialize(value, &mut ser)
                .map_err(|e| CtlError::Encode(e.to_string()))?;
            let mut text = String::from_utf8(buf).map_err(|e| CtlError::Encode(e.to_string()))?;
            text.push('\n');
            Ok(text)
        }
        OutputFormat::Yaml => {
            let mut text =
                serde_saphyr::to_string(value).map_err(|e| CtlError::Encode(e.to_string()))?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            Ok(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_list_like_kubectl() {
        let text = encode(&list(vec![json!({"kind": "Canary"})]), OutputFormat::Json).unwrap();
        assert_eq!(
            text,
            "{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n        {\n            \"kind\": \"Canary\"\n        }\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n"
        );
    }

    #[test]
    fn yaml_reads_back() {
        let value = list(vec![
            json!({"kind": "Canary", "spec": {"analysis": {"interval": "10s"}}}),
        ]);
        let text = encode(&value, OutputFormat::Yaml).unwrap();
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, value);
        assert!(text.contains("kind: List"), "{text}");
    }
}
