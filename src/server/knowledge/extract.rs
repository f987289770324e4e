//! Uploaded files into plain text: which kind a file is (by its name, its
//! declared type, then its first bytes) and its text, Markdown-like for
//! HTML so that headings survive for the chunker.

use std::fmt;

/// The kinds of document the knowledge base accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// Plain UTF-8 text.
    Text,
    /// Markdown (kept as written: its headings guide the chunker).
    Markdown,
    /// HTML, rendered to text with `#` headings.
    Html,
    /// PDF with a text layer.
    Pdf,
}

impl DocumentKind {
    /// The name stored with the document and shown in the list.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Pdf => "pdf",
        }
    }

    fn by_extension(name: &str) -> Option<Self> {
        let (_, extension) = name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "txt" | "text" => Some(Self::Text),
            "md" | "markdown" => Some(Self::Markdown),
            "html" | "htm" => Some(Self::Html),
            "pdf" => Some(Self::Pdf),
            _ => None,
        }
    }

    fn by_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "text/plain" => Some(Self::Text),
            "text/markdown" | "text/x-markdown" => Some(Self::Markdown),
            "text/html" | "application/xhtml+xml" => Some(Self::Html),
            "application/pdf" => Some(Self::Pdf),
            _ => None,
        }
    }
}

/// Why a file gives no text; shown to the uploader, naming the problem.
#[derive(Debug, PartialEq, Eq)]
pub enum ExtractError {
    /// Neither its name, its type nor its content is one we read.
    Unsupported(String),
    /// It holds no text (an empty file, or a scanned PDF without a text layer).
    Empty,
    /// It claims a kind it is not, or is damaged.
    Unreadable {
        /// The kind it was read as.
        kind: DocumentKind,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported(what) => write!(
                f,
                "unsupported file type {what}: upload text (.txt), Markdown (.md), HTML (.html) or PDF (.pdf)"
            ),
            Self::Empty => f.write_str(
                "the file has no text to index (empty, or a scanned PDF without a text layer)",
            ),
            Self::Unreadable { kind, reason } => {
                write!(f, "the file could not be read as {}: {reason}", kind.as_str())
            }
        }
    }
}

/// The file's kind: its extension first, then its declared content type
/// (when the name has none we know), then its first bytes. A PDF that does
/// not start like one is unreadable, not guessed at.
pub fn detect(
    name: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<DocumentKind, ExtractError> {
    let declared = DocumentKind::by_extension(name)
        .or_else(|| content_type.and_then(DocumentKind::by_content_type));
    let kind = match declared {
        Some(kind) => kind,
        None if bytes.starts_with(b"%PDF-") => DocumentKind::Pdf,
        None => {
            let what = match name.rsplit_once('.') {
                Some((_, extension)) if !extension.is_empty() => format!(".{extension}"),
                _ => content_type.map_or_else(|| format!("of {name}"), str::to_owned),
            };
            return Err(ExtractError::Unsupported(what));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ExtractError::Empty);
    }
    if kind == DocumentKind::Pdf && !bytes.starts_with(b"%PDF-") {
        return Err(ExtractError::Unreadable {
            kind,
            reason: "it does not start with a PDF header".into(),
        });
    }
    Ok(kind)
}

/// The document's text, with line endings and blank runs normalised.
/// Empty text is an error: there would be nothing to index.
pub fn extract_text(kind: DocumentKind, bytes: &[u8]) -> Result<String, ExtractError> {
    let raw = match kind {
        DocumentKind::Text | DocumentKind::Markdown => utf8(kind, bytes)?.to_owned(),
        DocumentKind::Html => {
            let html = utf8(kind, bytes)?;
            html2text::config::plain_no_decorate()
                .link_footnotes(false)
                .string_from_read(html.as_bytes(), 10_000)
                .map_err(|error| ExtractError::Unreadable {
                    kind,
                    reason: error.to_string(),
                })?
        }
        DocumentKind::Pdf => pdf_text(bytes)?,
    };
    let text = tidy(&raw);
    if text.is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(text)
}

fn utf8(kind: DocumentKind, bytes: &[u8]) -> Result<&str, ExtractError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.contains(&0) {
        return Err(ExtractError::Unreadable {
            kind,
            reason: "it holds binary data".into(),
        });
    }
    std::str::from_utf8(bytes).map_err(|error| ExtractError::Unreadable {
        kind,
        reason: format!(
            "it is not UTF-8 text (invalid byte at {})",
            error.valid_up_to()
        ),
    })
}

/// A PDF's text layer. The parser panics on some damaged files; a panic
/// is a damaged file here, not a crashed upload.
fn pdf_text(bytes: &[u8]) -> Result<String, ExtractError> {
    let unreadable = |reason: String| ExtractError::Unreadable {
        kind: DocumentKind::Pdf,
        reason,
    };
    match std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes)) {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(error)) => Err(unreadable(error.to_string())),
        Err(_) => Err(unreadable("the PDF is damaged".into())),
    }
}

/// `\r\n` to `\n`, trailing spaces off, runs of blank lines to one, and
/// the whole trimmed: what the chunker and the stored text expect.
fn tidy(raw: &str) -> String {
    let mut text = String::with_capacity(raw.len());
    let mut blank_run = 0;
    for line in raw.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        text.push_str(line);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_comes_from_the_name_then_the_type_then_the_bytes() {
        assert_eq!(detect("a.MD", None, b"# x"), Ok(DocumentKind::Markdown));
        assert_eq!(
            detect("notes", Some("text/plain; charset=utf-8"), b"x"),
            Ok(DocumentKind::Text)
        );
        assert_eq!(
            detect("page.htm", Some("application/octet-stream"), b"<p>x"),
            Ok(DocumentKind::Html)
        );
        assert_eq!(
            detect("upload", None, b"%PDF-1.4 ..."),
            Ok(DocumentKind::Pdf)
        );
        assert_eq!(
            detect("sheet.xlsx", None, b"PK.."),
            Err(ExtractError::Unsupported(".xlsx".into()))
        );
        assert_eq!(detect("empty.txt", None, b" \n "), Err(ExtractError::Empty));
        assert!(matches!(
            detect("fake.pdf", None, b"hello"),
            Err(ExtractError::Unreadable {
                kind: DocumentKind::Pdf,
                ..
            })
        ));
    }

    #[test]
    fn text_must_be_utf8_and_is_tidied() {
        assert_eq!(
            extract_text(
                DocumentKind::Text,
                b"\xEF\xBB\xBFone  \r\n\r\n\r\n\r\ntwo\n"
            )
            .unwrap(),
            "one\n\ntwo"
        );
        let error = extract_text(DocumentKind::Text, b"ok \xFF\xFE").unwrap_err();
        assert!(error.to_string().contains("not UTF-8"), "{error}");
        assert!(extract_text(DocumentKind::Markdown, b"a\0b").is_err());
    }

    #[test]
    fn html_keeps_its_headings_and_drops_its_markup() {
        let text = extract_text(
            DocumentKind::Html,
            b"<html><head><title>T</title><style>p{color:red}</style></head><body><h2>Refunds</h2><p>Within <b>30</b> days.</p></body></html>",
        )
        .unwrap();
        assert!(text.contains("## Refunds"), "{text}");
        assert!(text.contains("Within 30 days."), "{text}");
        assert!(!text.contains('<') && !text.contains("color"), "{text}");
    }

    #[test]
    fn a_damaged_pdf_is_an_error_not_a_panic() {
        let error = extract_text(
            DocumentKind::Pdf,
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n%%EOF",
        )
        .unwrap_err();
        assert!(
            matches!(error, ExtractError::Unreadable { .. }),
            "{error:?}"
        );
    }
}
