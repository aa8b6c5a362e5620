//! Attribute macros for [`resilience_runtime`](https://docs.rs/resilience-runtime).
//! Depend on `resilience-runtime`, which re-exports them; see its docs.
//!
//! Each attribute takes `dependency = "name"` (required; alias
//! `dependency_name`) and `operation = "name"` (optional, default: the
//! function's name; alias `operation_name`). `#[resilient]` also takes
//! `kind = "..."`. Every attribute takes `on_pool`, `idempotent`,
//! `retry_if = path`, `retry_after = path`, `fallback = path`, `record_if =
//! path` and `crate = "path"`. The full reference, with examples, is on each
//! attribute's page in `resilience_runtime`.

#![deny(missing_docs)]

mod args;
mod expand;
mod recovery;
mod types;

use proc_macro::TokenStream;

fn attribute(
    attr: TokenStream,
    item: TokenStream,
    name: &str,
    kind: Option<&'static str>,
) -> TokenStream {
    let result = args::parse(attr, name, kind).and_then(|args| {
        let function: syn::ItemFn = syn::parse(item.clone()).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("#[{name}] applies to a function with a body, such as `async fn get_pet(..) -> Result<Pet, E> {{ .. }}`: {e}"),
            )
        })?;
        expand::expand(args, function, name)
    });
    match result {
        Ok(tokens) => tokens.into(),
        // The function in the shape it would have had (a blocking fn is an
        // `async fn`), body as written, so that its callers and the IDE see
        // only the real error, as tokio-macros does.
        Err(error) => {
            let mut out: TokenStream = error.to_compile_error().into();
            match syn::parse::<syn::ItemFn>(item.clone()) {
                Ok(function) => out.extend(TokenStream::from(quote::ToTokens::into_token_stream(
                    expand::in_expanded_shape(function),
                ))),
                Err(_) => out.extend(item),
            }
            out
        }
    }
}

/// Protects a call to a database (kind `database`).
#[proc_macro_attribute]
pub fn database_call(attr: TokenStream, item: TokenStream) -> TokenStream {
    attribute(attr, item, "database_call", Some("Database"))
}

/// Protects a call to a remote API (kind `external_api`).
#[proc_macro_attribute]
pub fn api_call(attr: TokenStream, item: TokenStream) -> TokenStream {
    attribute(attr, item, "api_call", Some("ExternalApi"))
}

/// Protects a call to a cache (kind `cache`).
#[proc_macro_attribute]
pub fn cache_call(attr: TokenStream, item: TokenStream) -> TokenStream {
    attribute(attr, item, "cache_call", Some("Cache"))
}

/// Protects a call to a message broker (kind `message_queue`).
#[proc_macro_attribute]
pub fn message_queue_call(attr: TokenStream, item: TokenStream) -> TokenStream {
    attribute(attr, item, "message_queue_call", Some("MessageQueue"))
}

/// Protects a file-system operation (kind `file_system`).
#[proc_macro_attribute]
pub fn file_system_call(attr: TokenStream, item: TokenStream) -> TokenStream {
    attribute(attr, item, "file_system_call", Some("FileSystem"))
}

/// Protects a call of any kind: `#[resilient(kind = "cpu_intensive", dependency = "...")]`.
#[proc_macro_attribute]
pub fn resilient(attr: TokenStream, item: TokenStream) -> TokenStream {
    attribute(attr, item, "resilient", None)
}
