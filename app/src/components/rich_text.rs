//! User text (descriptions) shown as written: line breaks kept, the record's facets
//! (mentions, links, tags) and any other web addresses linked, everything else plain
//! text (escaped by the renderer like any text).

use leptos::prelude::*;

use crate::catalog::TextLink;

/// One piece of text: plain, a web address, or a facet's link.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Link(String),
    Facet(TextLink, String),
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

/// `text` cut at `links` (byte ranges, in order, not overlapping); the rest searched for
/// web addresses. Ranges that do not fit the text are ignored.
fn split(text: &str, links: &[TextLink]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut at = 0;
    for link in links {
        let fits = link.start >= at
            && link.start < link.end
            && link.end <= text.len()
            && text.is_char_boundary(link.start)
            && text.is_char_boundary(link.end);
        if !fits {
            continue;
        }
        out.extend(pieces(&text[at..link.start]));
        out.push(Piece::Facet(
            link.clone(),
            text[link.start..link.end].to_string(),
        ));
        at = link.end;
    }
    out.extend(pieces(&text[at..]));
    out
}

/// `text` with its line breaks, facets and links.
#[component]
pub fn RichText(
    /// What the user wrote.
    text: String,
    /// Where its facets link to.
    #[prop(optional)]
    links: Vec<TextLink>,
) -> impl IntoView {
    split(&text, &links)
        .into_iter()
        .map(|piece| match piece {
            Piece::Text(text) => lines(text).into_any(),
            Piece::Link(url) => {
                let text = url.clone();
                view! { <a href=url rel="noopener nofollow ugc" target="_blank">{text}</a> }
                    .into_any()
            }
            Piece::Facet(link, text) => {
                if link.external {
                    view! { <a href=link.href rel="noopener nofollow ugc" target="_blank">{lines(text)}</a> }
                        .into_any()
                } else {
                    view! { <a href=link.href>{lines(text)}</a> }.into_any()
                }
            }
        })
        .collect_view()
}

/// Text whose line breaks become `<br>`.
fn lines(text: String) -> impl IntoView {
    let parts: Vec<String> = text.split('\n').map(str::to_string).collect();
    let count = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| view! { {part}{(i + 1 < count).then(|| view! { <br /> })} })
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

    #[test]
    fn facets_cut_the_text_where_they_say_and_bad_ranges_are_ignored() {
        let link = |start, end, href: &str| TextLink {
            start,
            end,
            href: href.into(),
            external: false,
        };
        let text = "hi @ada, see #rust ✓";
        let pieces = split(
            text,
            &[
                link(3, 7, "/profile/did:plc:ada"),
                link(13, 18, "/tag/rust"),
                link(19, 20, "/inside-a-character"),
            ],
        );
        assert_eq!(
            pieces,
            vec![
                Piece::Text("hi ".into()),
                Piece::Facet(link(3, 7, "/profile/did:plc:ada"), "@ada".into()),
                Piece::Text(", see ".into()),
                Piece::Facet(link(13, 18, "/tag/rust"), "#rust".into()),
                Piece::Text(" ✓".into()),
            ]
        );
    }
}
