//! Contacts masked out of a request's free text for the public reads
//! (`open311_public_reads`): what a citizen or a hotline agent may have written into
//! the description. `views::ticket` masks the reporter's own fields; this masks what
//! can be recognised in the text:
//!
//! - a mainland mobile number, `1[3-9]` and nine more digits (`+86`/`86` before it,
//!   spaces or hyphens inside, as people write `138 0000 0000`): `138****0000`, as
//!   `views::ticket::mask_phone` shows a reporter's phone to staff who may not see it;
//! - a landline with its area code, `0` and 9 to 11 more digits (`0631-5812345`,
//!   `(0631)5812345`, `010 12345678`): the area code kept, the number starred;
//! - an 18-character resident ID number (17 digits and a digit or `X`): all starred;
//! - an e-mail address: its first character, `***@`, and the domain.
//!
//! Full-width digits (`１３８…`) count as digits. A number that runs into more digits
//! or Latin letters (an order number, a part of a URL) is not a contact and is kept;
//! a bare local number without its area code (7 or 8 digits) cannot be told from a
//! count or an amount and is kept too.

/// The text with every contact it recognises masked.
pub fn contacts(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some((end, masked)) = number_at(&chars, i).or_else(|| email_at(&chars, i)) {
            out.push_str(&masked);
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The value of an ASCII or full-width digit.
fn digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

fn is_word(c: char) -> bool {
    digit(c).is_some() || c.is_ascii_alphabetic() || c == '_'
}

/// A phone or ID number starting at `i`: where it ends and its masked form.
fn number_at(chars: &[char], i: usize) -> Option<(usize, String)> {
    if i > 0 && (is_word(chars[i - 1]) || chars[i - 1] == '+') {
        return None;
    }
    let start_char = chars[i];
    if digit(start_char).is_none() && start_char != '+' && start_char != '(' {
        return None;
    }
    // Collect digits, letting single spaces, hyphens and a parenthesised area code
    // separate groups.
    let mut digits = String::new();
    let mut j = i;
    let mut x_end = false;
    if chars[j] == '+' {
        j += 1;
        if j >= chars.len() || digit(chars[j]).is_none() {
            return None;
        }
    }
    if chars[j] == '(' {
        j += 1;
    }
    while j < chars.len() {
        let c = chars[j];
        if let Some(d) = digit(c) {
            digits.push(char::from_digit(d, 10)?);
            j += 1;
        } else if (c == 'X' || c == 'x') && digits.len() == 17 {
            x_end = true;
            j += 1;
            break;
        } else if matches!(c, ' ' | '-' | ')' | '－')
            && j + 1 < chars.len()
            && digit(chars[j + 1]).is_some()
            && !digits.is_empty()
        {
            j += 1;
        } else {
            break;
        }
        if digits.len() > 20 {
            return None;
        }
    }
    if j < chars.len() && is_word(chars[j]) {
        return None;
    }
    let national = digits
        .strip_prefix("86")
        .filter(|rest| is_mobile(rest))
        .unwrap_or(&digits);
    if x_end {
        return (digits.len() == 17).then(|| (j, "*".repeat(18)));
    }
    if is_mobile(national) {
        return Some((
            j,
            format!("{}****{}", &national[..3], &national[national.len() - 4..]),
        ));
    }
    if digits.len() == 18 {
        return Some((j, "*".repeat(18)));
    }
    if digits.starts_with('0') && (10..=12).contains(&digits.len()) && !digits.starts_with("00") {
        // 010, 020-029 have three-digit area codes; the others four.
        let area = if digits.starts_with("01") || digits.starts_with("02") {
            3
        } else {
            4
        };
        return Some((
            j,
            format!("{}-{}", &digits[..area], "*".repeat(digits.len() - area)),
        ));
    }
    None
}

fn is_mobile(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

/// An e-mail address starting at `i`: where it ends and its masked form.
fn email_at(chars: &[char], i: usize) -> Option<(usize, String)> {
    if !is_local_char(chars[i]) || (i > 0 && is_local_char(chars[i - 1])) {
        return None;
    }
    let mut at = i;
    while at < chars.len() && is_local_char(chars[at]) {
        at += 1;
    }
    if at == i || at >= chars.len() || chars[at] != '@' {
        return None;
    }
    let mut end = at + 1;
    while end < chars.len() && (chars[end].is_ascii_alphanumeric() || "-.".contains(chars[end])) {
        end += 1;
    }
    // The domain ends on a letter or digit, holds a dot, and is not just dots.
    while end > at + 1 && chars[end - 1] == '.' {
        end -= 1;
    }
    let domain: String = chars[at + 1..end].iter().collect();
    let parts: Vec<&str> = domain.split('.').collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some((end, format!("{}***@{domain}", chars[i])))
}

#[cfg(test)]
mod tests {
    use super::contacts;

    #[test]
    fn phones_ids_and_addresses_are_masked() {
        let cases = [
            ("电话13800000000请回电", "电话138****0000请回电"),
            ("手机 139 1234 5678。", "手机 139****5678。"),
            ("+86 138-0000-1111", "138****1111"),
            ("８６１３８１２３４５６７８", "138****5678"),
            ("座机0631-5812345，", "座机0631-*******，"),
            ("(0631)5812345", "0631-*******"),
            ("北京010-12345678", "北京010-********"),
            ("身份证370102199001011234", "身份证******************"),
            ("身份证37010219900101123X号", "身份证******************号"),
            ("邮箱 zhao.xs@example.com.", "邮箱 z***@example.com."),
        ];
        for (text, masked) in cases {
            assert_eq!(contacts(text), masked, "{text}");
        }
    }

    #[test]
    fn other_numbers_are_kept() {
        for text in [
            "垃圾堆了3天，约20袋",
            "海滨北路12号楼2单元",
            "订单号A13800000000",
            "12345热线",
            "5812345",
            "138000000001",
            "2026-12-07 08:00",
            "http://example.com/p/13800000000x",
            "a@b",
            "not@an address",
            "",
        ] {
            assert_eq!(contacts(text), text);
        }
    }
}
