//! User text (descriptions) shown as written: line breaks kept, web addresses linked,
//! everything else plain text (escaped by the renderer like any text).

use leptos::prelude::*;

/// One piece of a line: text, or a link.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Link(String),
}

/// Splits `line` into text and `http(s)://` links (a trailing `.,;:!?)` is left out of
/// a link, as people write them at the end of sentences).
fn pieces(line: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        if start > 0 {
            out.push(Piece::Text(rest[..start].to_string()));
        }
        let tail = &rest[start..];
        let mut end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(tail.len());
        while end > 0 && tail[..end].ends_with(['.', ',', ';', ':', '!', '?', ')']) {
            end -= 1;
        }
        let url = &tail[..end];
        if url.len() > "https://".len() {
            out.push(Piece::Link(url.to_string()));
        } else {
            out.push(Piece::Text(url.to_string()));
        }
        rest = &tail[end..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    out
}

/// `text` as paragraphs of lines, with its links.
#[component]
pub fn RichText(
    /// What the user wrote.
    text: String,
) -> impl IntoView {
    let lines: Vec<Vec<Piece>> = text.lines().map(pieces).collect();
    let count = lines.len();
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let parts = line
                .into_iter()
                .map(|piece| match piece {
                    Piece::Text(text) => text.into_any(),
                    Piece::Link(url) => {
                        let text = url.clone();
                        view! { <a href=url rel="noopener nofollow ugc" target="_blank">{text}</a> }
                            .into_any()
                    }
                })
                .collect_view();
            view! { {parts}{(i + 1 < count).then(|| view! { <br /> })} }
        })
        .collect_view()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_and_punctuation_left_out() {
        assert_eq!(
            pieces("See https://example.com/a?b=1, and (http://x.org)."),
            vec![
                Piece::Text("See ".into()),
                Piece::Link("https://example.com/a?b=1".into()),
                Piece::Text(", and (".into()),
                Piece::Link("http://x.org".into()),
                Piece::Text(").".into()),
            ]
        );
        assert_eq!(pieces("no links"), vec![Piece::Text("no links".into())]);
        assert_eq!(pieces("https://"), vec![Piece::Text("https://".into())]);
    }
}
