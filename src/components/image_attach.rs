//! Images for a question to a model with vision: a file input that reads the
//! chosen files as base64 in the browser, refuses what the models do not take
//! (type, size, count) with a visible message, and shows thumbnails.

use crate::model::chat::{ImageAttachment, IMAGE_MEDIA_TYPES, MAX_IMAGES, MAX_IMAGE_BYTES};
use leptos::prelude::*;

/// The image as a `data:` URL, for an `<img>`.
pub fn data_url(image: &ImageAttachment) -> String {
    format!("data:{};base64,{}", image.media_type, image.data)
}

/// Whether one more image may be attached: its media type, its size in bytes
/// and how many are attached already. `Err` says why not.
pub fn check_image(
    name: &str,
    media_type: &str,
    bytes: f64,
    attached: usize,
) -> Result<(), String> {
    if !IMAGE_MEDIA_TYPES.contains(&media_type) {
        return Err(format!(
            "{name}: only PNG, JPEG, GIF and WebP images can be sent"
        ));
    }
    if bytes > MAX_IMAGE_BYTES as f64 {
        return Err(format!(
            "{name}: larger than {} MB",
            MAX_IMAGE_BYTES / (1024 * 1024)
        ));
    }
    if attached >= MAX_IMAGES {
        return Err(format!("{name}: at most {MAX_IMAGES} images per message"));
    }
    Ok(())
}

/// Thumbnails of images (attached to a question, or about to be).
#[component]
pub fn Thumbnails(
    /// The images.
    #[prop(into)]
    images: Signal<Vec<ImageAttachment>>,
    /// Called with an image's index to remove it; without it there are no Remove buttons.
    #[prop(optional)]
    on_remove: Option<Callback<usize>>,
) -> impl IntoView {
    move || {
        let images = images.get();
        (!images.is_empty()).then(|| {
            view! {
                <ul class="thumbs" data-test="thumbnails">
                    {images
                        .iter()
                        .enumerate()
                        .map(|(i, image)| {
                            let n = i + 1;
                            view! {
                                <li>
                                    <img src=data_url(image) alt=format!("Image {n}")/>
                                    {on_remove.map(|remove| view! {
                                        <button type="button" class="link" aria-label=format!("Remove image {n}")
                                            data-test="remove-image" on:click=move |_| remove.run(i)>"Remove"</button>
                                    })}
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            }
        })
    }
}

/// The labelled file input, its problems and the thumbnails of `images`.
#[component]
pub fn ImageAttach(
    /// The images attached so far.
    images: RwSignal<Vec<ImageAttachment>>,
) -> impl IntoView {
    let problems = RwSignal::new(Vec::<String>::new());
    let on_change = move |ev: leptos::ev::Event| {
        problems.set(Vec::new());
        read_selected(&ev, images, problems);
    };
    let remove = Callback::new(move |i: usize| {
        images.update(|list| {
            if i < list.len() {
                list.remove(i);
            }
        })
    });
    view! {
        <div class="attach">
            <label for="attach-image">
                {format!(
                    "Attach images (PNG, JPEG, GIF or WebP; up to {MAX_IMAGES}, {} MB each)",
                    MAX_IMAGE_BYTES / (1024 * 1024)
                )}
            </label>
            <input id="attach-image" type="file" multiple accept=IMAGE_MEDIA_TYPES.join(",")
                data-test="attach-image" on:change=on_change/>
            {move || {
                let problems = problems.get();
                (!problems.is_empty()).then(|| view! {
                    <p class="field-error" role="alert" data-test="attach-error">{problems.join(" · ")}</p>
                })
            }}
            <Thumbnails images=images on_remove=remove/>
        </div>
    }
}

/// Reads the files chosen in the input `ev` came from.
#[cfg(feature = "hydrate")]
fn read_selected(
    ev: &leptos::ev::Event,
    images: RwSignal<Vec<ImageAttachment>>,
    problems: RwSignal<Vec<String>>,
) {
    let input: web_sys::HtmlInputElement = event_target(ev);
    let Some(list) = input.files() else {
        return;
    };
    let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
    // Choosing the same file again must fire `change` again.
    input.set_value("");
    leptos::task::spawn_local(async move {
        for file in files {
            let attached = images.with_untracked(Vec::len);
            let media_type = file.type_();
            let read = match check_image(&file.name(), &media_type, file.size(), attached) {
                Ok(()) => read_base64(&file).await,
                Err(problem) => Err(problem),
            };
            match read {
                Ok(data) => images.update(|list| list.push(ImageAttachment { media_type, data })),
                Err(problem) => problems.update(|list| list.push(problem)),
            }
        }
    });
}

/// Files are chosen in the browser only.
#[cfg(not(feature = "hydrate"))]
fn read_selected(
    _ev: &leptos::ev::Event,
    _images: RwSignal<Vec<ImageAttachment>>,
    _problems: RwSignal<Vec<String>>,
) {
}

/// The file's bytes as base64 (through a `data:` URL).
#[cfg(feature = "hydrate")]
async fn read_base64(file: &web_sys::File) -> Result<String, String> {
    let failed = || format!("{}: could not be read", file.name());
    let reader = web_sys::FileReader::new().map_err(|_| failed())?;
    let loaded = js_sys::Promise::new(&mut |resolve, reject| {
        reader.set_onload(Some(&resolve));
        reader.set_onerror(Some(&reject));
    });
    reader.read_as_data_url(file).map_err(|_| failed())?;
    wasm_bindgen_futures::JsFuture::from(loaded)
        .await
        .map_err(|_| failed())?;
    let url = reader
        .result()
        .ok()
        .and_then(|r| r.as_string())
        .ok_or_else(failed)?;
    url.split_once(',')
        .map(|(_, data)| data.to_owned())
        .ok_or_else(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_accepted_images_are_attached() {
        assert!(check_image("a.png", "image/png", 1024.0, 0).is_ok());
        assert!(check_image("a.bmp", "image/bmp", 1024.0, 0)
            .unwrap_err()
            .contains("only PNG"));
        assert!(
            check_image("big.jpg", "image/jpeg", (MAX_IMAGE_BYTES + 1) as f64, 0)
                .unwrap_err()
                .contains("larger than 5 MB")
        );
        assert!(check_image("five.gif", "image/gif", 10.0, MAX_IMAGES)
            .unwrap_err()
            .contains("at most 4"));
    }
}
