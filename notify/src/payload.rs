//! What a delivery says: the webhook's JSON and the mail's subject and text. One shape for a single
//! notification and a digest (a digest has more than one entry in `notifications`), so a receiver parses one.
use bydata_schemas::format_rfc3339;
use bydata_store::{Delivery, Notification};
use serde_json::{Value, json};

/// The webhook body:
/// `{"delivery", "kind", "digest", "count", "subject", "org", "channel", "group", "notifications": [{"key",
/// "kind", "subject", "at", "group", "body"}]}`.
pub(crate) fn webhook_json(delivery: &Delivery, members: &[Notification]) -> Value {
    json!({
        "delivery": delivery.key,
        "kind": delivery.kind.as_str(),
        "digest": delivery.digest,
        "count": members.len(),
        "subject": delivery.subject,
        "org": delivery.org,
        "channel": delivery.channel,
        "group": delivery.group,
        "notifications": members.iter().map(|n| json!({
            "key": n.key,
            "kind": n.kind.as_str(),
            "subject": n.subject,
            "at": format_rfc3339(n.at),
            "group": n.group,
            "body": n.body,
        })).collect::<Vec<_>>(),
    })
}

/// The mail's subject line.
pub(crate) fn mail_subject(delivery: &Delivery) -> String {
    let kind = delivery.kind.as_str().to_uppercase();
    // One line: a subject with a line break would start a header of its own.
    let subject: String = delivery
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("[bydata] {kind}: {subject}")
}

/// The mail's plain text: what happened, one line per notification for a digest, then each one's details.
pub(crate) fn mail_text(delivery: &Delivery, members: &[Notification]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{}: {}\n\n",
        delivery.kind.as_str().to_uppercase(),
        delivery.subject
    ));
    if delivery.digest {
        out.push_str(&format!(
            "{} notifications in {}:\n",
            members.len(),
            delivery.group.as_deref().unwrap_or("-")
        ));
        for n in members {
            out.push_str(&format!("- {}  {}\n", format_rfc3339(n.at), n.subject));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Organisation: {}\nChannel: {}\nDelivery: {}\n\n",
        delivery.org, delivery.channel, delivery.key
    ));
    for n in members {
        out.push_str(&format!(
            "{} ({}, {})\n{}\n\n",
            n.subject,
            n.key,
            format_rfc3339(n.at),
            serde_json::to_string_pretty(&n.body).unwrap_or_default()
        ));
    }
    // Lines under 78 characters keep the mail in plain 7-bit text.
    out.push_str("-- \nbydata: a repeated delivery keeps its Message-ID.\n");
    out
}
