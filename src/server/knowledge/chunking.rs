//! Text into chunks for embedding, following the document's structure:
//! Markdown headings start sections (a chunk never spans two), paragraphs
//! are packed whole while they fit, longer ones are cut at sentences, then
//! words; consecutive chunks of a section share an overlap so that a fact
//! cut in two is still found whole in one of them. Each chunk starts with
//! its section's heading, which is what a question is most often about.

/// How big chunks are, in the embedding model's tokens.
#[derive(Clone, Copy, Debug)]
pub struct ChunkingOptions {
    /// Most tokens in one chunk, its heading included.
    pub max_tokens: u64,
    /// Tokens of the previous chunk's end repeated at the next one's start.
    pub overlap_tokens: u64,
}

impl Default for ChunkingOptions {
    /// 400 tokens with 60 of overlap: small enough to cite precisely, large
    /// enough to hold a paragraph with its context (a 2,000-chunk standard
    /// project is about 800k tokens).
    fn default() -> Self {
        Self {
            max_tokens: 400,
            overlap_tokens: 60,
        }
    }
}

/// One piece of a document, as stored and embedded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Its place in the document, from 0.
    pub ordinal: u32,
    /// Its text, starting with its section's heading if it has one.
    pub text: String,
    /// The heading of its section, without the `#`s.
    pub heading: Option<String>,
    /// Its tokens, counted by the caller's counter.
    pub tokens: u64,
}

/// A token counter: the project's embedding model's.
pub type Counter<'a> = &'a dyn Fn(&str) -> u64;

/// The document's chunks, in order; none for a text with nothing in it.
pub fn split(text: &str, options: ChunkingOptions, count: Counter<'_>) -> Vec<Chunk> {
    let max = options.max_tokens.max(8);
    let overlap = options.overlap_tokens.min(max / 2);
    let mut chunks = Vec::new();
    for section in sections(text) {
        let heading_line = section.heading_line.unwrap_or_default();
        let heading_tokens = if heading_line.is_empty() {
            0
        } else {
            count(heading_line) + 1
        };
        let body_limit = max.saturating_sub(heading_tokens).max(max / 2);
        // Pieces leave room for the overlap that may open their chunk.
        let piece_limit = body_limit.saturating_sub(overlap + 1).max(1);
        let mut pieces = Vec::new();
        for paragraph in section
            .body
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            fit(paragraph, piece_limit, count, &mut pieces);
        }
        if pieces.is_empty() && !heading_line.is_empty() {
            continue;
        }
        let mut body = String::new();
        let mut body_tokens = 0;
        for (piece, tokens) in pieces {
            if !body.is_empty() && body_tokens + tokens + 1 > body_limit {
                push(&mut chunks, &section, &body, count);
                body = tail(&body, overlap, count);
                body_tokens = if body.is_empty() { 0 } else { count(&body) };
                if body_tokens + tokens + 1 > body_limit {
                    body.clear();
                    body_tokens = 0;
                }
            }
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(&piece);
            body_tokens += tokens + 1;
        }
        // The last piece is always in `body`: what is left is a chunk.
        if !body.is_empty() {
            push(&mut chunks, &section, &body, count);
        }
    }
    chunks
}

struct Section<'t> {
    heading_line: Option<&'t str>,
    heading: Option<String>,
    body: String,
}

/// The text cut at Markdown headings (`#` to `######` and a space).
fn sections(text: &str) -> Vec<Section<'_>> {
    let mut sections = vec![Section {
        heading_line: None,
        heading: None,
        body: String::new(),
    }];
    for line in text.lines() {
        if let Some(title) = heading_of(line) {
            sections.push(Section {
                heading_line: Some(line.trim()),
                heading: Some(title.to_owned()),
                body: String::new(),
            });
            continue;
        }
        let body = &mut sections.last_mut().expect("one section at least").body;
        body.push_str(line);
        body.push('\n');
    }
    sections
        .into_iter()
        .filter(|section| section.heading.is_some() || !section.body.trim().is_empty())
        .collect()
}

fn heading_of(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let hashes = trimmed.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let title = trimmed[hashes..]
        .strip_prefix(' ')?
        .trim()
        .trim_end_matches('#')
        .trim();
    (!title.is_empty()).then_some(title)
}

fn push(chunks: &mut Vec<Chunk>, section: &Section<'_>, body: &str, count: Counter<'_>) {
    let text = match section.heading_line {
        Some(heading) => format!("{heading}\n\n{body}"),
        None => body.to_owned(),
    };
    let tokens = count(&text);
    chunks.push(Chunk {
        ordinal: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
        text,
        heading: section.heading.clone(),
        tokens,
    });
}

/// Pieces of `text` of at most `limit` tokens each, with their counts: the
/// whole text if it fits, else its sentences, else its words, else its
/// characters.
fn fit(text: &str, limit: u64, count: Counter<'_>, out: &mut Vec<(String, u64)>) {
    let tokens = count(text);
    if tokens <= limit {
        out.push((text.to_owned(), tokens));
        return;
    }
    let sentences = sentences(text);
    let parts: Vec<&str> = if sentences.len() > 1 {
        sentences
    } else {
        let words: Vec<&str> = text.split_inclusive(char::is_whitespace).collect();
        if words.len() > 1 {
            words
        } else {
            return hard_split(text, limit, count, out);
        }
    };
    let mut current = String::new();
    for part in parts {
        let candidate = format!("{current}{part}");
        if !current.is_empty() && count(candidate.trim()) > limit {
            let done = std::mem::take(&mut current);
            fit(done.trim(), limit, count, out);
            current.push_str(part);
        } else {
            current = candidate;
        }
    }
    if !current.trim().is_empty() {
        fit(current.trim(), limit, count, out);
    }
}

/// Sentences, each with its trailing space, cut after `.`, `!` or `?`
/// followed by whitespace.
fn sentences(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut previous_end = false;
    for (index, character) in text.char_indices() {
        if previous_end && character.is_whitespace() {
            let end = index + character.len_utf8();
            parts.push(&text[start..end]);
            start = end;
        }
        previous_end = matches!(character, '.' | '!' | '?');
    }
    if start < text.len() {
        parts.push(&text[start..]);
    }
    parts
}

/// A word longer than a chunk (a URL, an encoded blob): cut by characters.
fn hard_split(text: &str, limit: u64, count: Counter<'_>, out: &mut Vec<(String, u64)>) {
    let characters: Vec<char> = text.chars().collect();
    let mut start = 0;
    while start < characters.len() {
        let (mut low, mut high) = (start + 1, characters.len());
        while low < high {
            let middle = (low + high).div_ceil(2);
            let piece: String = characters[start..middle].iter().collect();
            if count(&piece) <= limit {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        let piece: String = characters[start..low].iter().collect();
        let tokens = count(&piece);
        out.push((piece, tokens));
        start = low;
    }
}

/// The last words of `body` that fit in `tokens`, to open the next chunk.
fn tail(body: &str, tokens: u64, count: Counter<'_>) -> String {
    if tokens == 0 {
        return String::new();
    }
    let starts: Vec<usize> = body
        .char_indices()
        .filter(|&(index, c)| {
            !c.is_whitespace() && (index == 0 || body[..index].ends_with(char::is_whitespace))
        })
        .map(|(index, _)| index)
        .collect();
    // The fewest words from the end that still fit: search over word starts.
    let (mut low, mut high) = (0, starts.len());
    while low < high {
        let middle = (low + high) / 2;
        if count(&body[starts[middle]..]) <= tokens {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    starts
        .get(low)
        .map_or_else(String::new, |&start| body[start..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> u64 {
        text.split_whitespace().count() as u64
    }

    fn options(max_tokens: u64, overlap_tokens: u64) -> ChunkingOptions {
        ChunkingOptions {
            max_tokens,
            overlap_tokens,
        }
    }

    #[test]
    fn headings_start_chunks_and_lead_each_of_them() {
        let text = "Intro line.\n\n# Refunds\n\nRefunds are paid within 30 days.\n\n## Shipping\n\nWe ship worldwide.";
        let chunks = split(text, options(50, 5), &words);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Intro line.",
                "# Refunds\n\nRefunds are paid within 30 days.",
                "## Shipping\n\nWe ship worldwide."
            ]
        );
        assert_eq!(chunks[1].heading.as_deref(), Some("Refunds"));
        assert_eq!(chunks[0].heading, None);
        assert_eq!(
            chunks.iter().map(|c| c.ordinal).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(chunks[1].tokens, 8);
    }

    #[test]
    fn long_sections_are_cut_within_the_limit_and_overlap() {
        let paragraph: String = (0..30)
            .map(|i| format!("Sentence number {i} is here. "))
            .collect();
        let text = format!("# Long\n\n{paragraph}");
        let chunks = split(&text, options(40, 8), &words);
        assert!(chunks.len() > 3, "{chunks:#?}");
        for chunk in &chunks {
            assert!(
                chunk.tokens <= 40,
                "{} tokens: {}",
                chunk.tokens,
                chunk.text
            );
            assert!(chunk.text.starts_with("# Long\n\n"), "{}", chunk.text);
        }
        for pair in chunks.windows(2) {
            let end: Vec<&str> = pair[0].text.split_whitespace().rev().take(3).collect();
            let next = &pair[1].text;
            assert!(
                end.iter().all(|word| next.contains(word)),
                "no overlap between {:?} and {next:?}",
                pair[0].text
            );
        }
        let all: String = chunks.iter().map(|c| c.text.as_str()).collect();
        for i in 0..30 {
            assert!(all.contains(&format!("number {i} is")), "sentence {i} lost");
        }
    }

    #[test]
    fn words_longer_than_a_chunk_are_cut_by_characters() {
        let blob = "x".repeat(100);
        let chars = |t: &str| t.chars().count() as u64;
        let chunks = split(&blob, options(30, 0), &chars);
        // Each piece leaves one token for the separator a neighbour would need.
        assert_eq!(
            chunks.iter().map(|c| c.tokens).collect::<Vec<_>>(),
            [29, 29, 29, 13]
        );
        assert_eq!(
            chunks.iter().map(|c| c.text.as_str()).collect::<String>(),
            blob
        );
    }

    #[test]
    fn nothing_gives_no_chunks() {
        assert!(split("", ChunkingOptions::default(), &words).is_empty());
        assert!(split("  \n\n ", ChunkingOptions::default(), &words).is_empty());
        assert!(split("# Only a heading", ChunkingOptions::default(), &words).is_empty());
    }
}
