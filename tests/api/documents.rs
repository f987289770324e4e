//! Sample knowledge base documents for the tests and the bench: a support
//! handbook whose sections a question can find, and a PDF writer that makes
//! real PDFs (a text layer in the standard Helvetica font, a correct
//! cross-reference table) of any number of pages.

/// A support handbook in Markdown: one section per topic.
pub const HANDBOOK_MD: &str = "# Acme support handbook

## Refunds

Refunds are paid back to the original card within 14 days of the returned parcel reaching our warehouse. Digital purchases are refundable for 30 days.

## Shipping

Parcels leave Rotterdam every weekday. Standard delivery takes 3 to 5 working days; express delivery arrives the next working day.

## Privacy

Invoices are kept for seven years for tax purposes. Customer data is never sold.
";

/// The same topics as an HTML page.
pub const HANDBOOK_HTML: &str = "<!doctype html><html><head><title>Warranty</title>\
<style>body { font-family: sans-serif }</style><script>var tracking = 1;</script></head>\
<body><h1>Warranty</h1><p>Every kettle carries a <b>two-year</b> warranty against defects.</p>\
<h2>Claims</h2><p>Send a photo of the defect and the order number to warranty@acme.example.</p></body></html>";

/// A PDF of `pages`, each a list of lines, in Helvetica 11 pt.
pub fn pdf_of(pages: &[Vec<String>]) -> Vec<u8> {
    let escape = |line: &str| {
        line.replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    // Objects: 1 catalog, 2 page tree, 3 font, then a page and its content per page.
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        String::new(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    ];
    let mut kids = Vec::new();
    for lines in pages {
        let page_number = objects.len() + 1;
        let content_number = page_number + 1;
        kids.push(format!("{page_number} 0 R"));
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {content_number} 0 R >>"
        ));
        let mut stream = String::from("BT /F1 11 Tf 14 TL 72 740 Td\n");
        for line in lines {
            stream.push_str(&format!("({}) Tj T*\n", escape(line)));
        }
        stream.push_str("ET");
        objects.push(format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ));
    }
    objects[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    );
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = pdf.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        table.push_str(&format!("{offset:010} 00000 n \n"));
    }
    table.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    pdf.extend_from_slice(table.as_bytes());
    pdf
}

/// A PDF with the returns policy on its first page and shipping on its second.
pub fn policy_pdf() -> Vec<u8> {
    pdf_of(&[
        vec![
            "Returns policy".into(),
            "Unused items may be returned within 60 days for store credit.".into(),
        ],
        vec![
            "Gift cards".into(),
            "Gift cards never expire and cannot be exchanged for cash.".into(),
        ],
    ])
}
