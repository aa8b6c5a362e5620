//! The attribute's arguments: `dependency = "..."`, `operation = "..."`,
//! for `#[resilient]` `kind = "..."`, the flags `on_pool` and `idempotent`,
//! and the paths `retry_if`, `retry_after` and `fallback`.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, Lit, LitStr, Path, Result};

/// The kinds the runtime knows, by their YAML names.
pub(crate) const KINDS: [(&str, &str); 7] = [
    ("database", "Database"),
    ("external_api", "ExternalApi"),
    ("cache", "Cache"),
    ("message_queue", "MessageQueue"),
    ("file_system", "FileSystem"),
    ("cpu_intensive", "CpuIntensive"),
    ("memory_intensive", "MemoryIntensive"),
];

pub(crate) struct Args {
    /// The runtime's `__private` module: `::resilience_runtime::__private`,
    /// or under the path `crate = "..."` gives.
    pub runtime: TokenStream,
    pub dependency: LitStr,
    pub operation: Option<LitStr>,
    /// The `Kind` variant name.
    pub kind: &'static str,
    /// Where `on_pool` was written, if it was.
    pub on_pool: Option<Span>,
    /// Where `idempotent` was written, if it was.
    pub idempotent: Option<Span>,
    pub retry_if: Option<Path>,
    pub retry_after: Option<Path>,
    pub fallback: Option<Path>,
    pub record_if: Option<Path>,
}

#[derive(Default)]
struct Parsed {
    krate: Option<LitStr>,
    dependency: Option<LitStr>,
    operation: Option<LitStr>,
    kind: Option<LitStr>,
    on_pool: Option<Span>,
    idempotent: Option<Span>,
    retry_if: Option<Path>,
    retry_after: Option<Path>,
    fallback: Option<Path>,
    record_if: Option<Path>,
}

const ARGUMENTS: &str = "`dependency`, `operation`, `on_pool`, `idempotent`, `retry_if`, \
     `retry_after`, `fallback`, `record_if` or `crate` (the runtime's path when it is renamed or \
     re-exported: crate = \"my_facade::resilience\")";

/// `attribute` is the macro's name; `kind` is fixed for all but `resilient`.
pub(crate) fn parse(
    tokens: proc_macro::TokenStream,
    attribute: &str,
    kind: Option<&'static str>,
) -> Result<Args> {
    let mut parsed = Parsed::default();
    let parser = syn::meta::parser(|meta| parsed.argument(meta, attribute, kind.is_none()));
    syn::parse::Parser::parse(parser, tokens)?;

    let example_kind = if kind.is_none() {
        "kind = \"database\", "
    } else {
        ""
    };
    let dependency = parsed.dependency.ok_or_else(|| {
        Error::new(
            Span::call_site(),
            format!(
                "#[{attribute}] needs the dependency it calls: write \
                 #[{attribute}({example_kind}dependency = \"petstore_database\")]"
            ),
        )
    })?;
    let kind = match (kind, parsed.kind) {
        (Some(fixed), _) => fixed,
        (None, Some(lit)) => variant(&lit)?,
        (None, None) => {
            return Err(Error::new(
                Span::call_site(),
                format!(
                    "#[resilient] needs the dependency's kind: write \
                     #[resilient(kind = \"database\", dependency = \"{}\")]; kinds: {}",
                    dependency.value(),
                    kind_names()
                ),
            ))
        }
    };
    if parsed.idempotent.is_none() {
        for (name, path) in [
            ("retry_if", &parsed.retry_if),
            ("retry_after", &parsed.retry_after),
        ] {
            if let Some(path) = path {
                return Err(Error::new_spanned(
                    path,
                    format!(
                        "`{name}` has no effect without `idempotent`: only idempotent sites are \
                         retried. Add `idempotent` if a repeated call is safe, or remove `{name}`"
                    ),
                ));
            }
        }
    }
    let runtime = match &parsed.krate {
        None => quote::quote!(::resilience_runtime::__private),
        Some(lit) => {
            let path: Path = lit.parse().map_err(|_| {
                Error::new(
                    lit.span(),
                    format!(
                        "`crate` takes the path the runtime is reachable by, such as \
                         crate = \"resil\" or crate = \"my_facade::resilience\"; `{}` is not a path",
                        lit.value()
                    ),
                )
            })?;
            quote::quote_spanned!(lit.span()=> #path::__private)
        }
    };
    Ok(Args {
        runtime,
        dependency,
        operation: parsed.operation,
        kind,
        on_pool: parsed.on_pool,
        idempotent: parsed.idempotent,
        retry_if: parsed.retry_if,
        retry_after: parsed.retry_after,
        fallback: parsed.fallback,
        record_if: parsed.record_if,
    })
}

impl Parsed {
    fn argument(&mut self, meta: ParseNestedMeta, attribute: &str, takes_kind: bool) -> Result<()> {
        let name = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let flag = match name.as_str() {
            "on_pool" => Some(&mut self.on_pool),
            "idempotent" => Some(&mut self.idempotent),
            _ => None,
        };
        if let Some(flag) = flag {
            if flag.is_some() {
                return Err(meta.error(format!("`{name}` is given twice; keep one")));
            }
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error(format!("`{name}` takes no value: write just `{name}`")));
            }
            *flag = Some(meta.path.span());
            return Ok(());
        }
        let path_slot = match name.as_str() {
            "retry_if" => Some(&mut self.retry_if),
            "retry_after" => Some(&mut self.retry_after),
            "fallback" => Some(&mut self.fallback),
            "record_if" => Some(&mut self.record_if),
            _ => None,
        };
        if let Some(slot) = path_slot {
            if slot.is_some() {
                return Err(meta.error(format!("`{name}` is given twice; keep one")));
            }
            let value: Expr = meta.value()?.parse()?;
            let Expr::Path(path) = value else {
                let example = match &value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) => s.value(),
                    _ => "my_function".to_owned(),
                };
                return Err(Error::new_spanned(
                    &value,
                    format!("`{name}` takes the path of a function: write {name} = {example}"),
                ));
            };
            *slot = Some(path.path);
            return Ok(());
        }
        let slot = match name.as_str() {
            "crate" => &mut self.krate,
            "dependency" | "dependency_name" => &mut self.dependency,
            "operation" | "operation_name" => &mut self.operation,
            "kind" if takes_kind => &mut self.kind,
            _ => {
                let kind = if takes_kind { "`kind`, " } else { "" };
                return Err(meta.error(format!(
                    "unknown argument of #[{attribute}]: expected {kind}{ARGUMENTS}, \
                     as in #[{attribute}(dependency = \"petstore_database\", operation = \"get_pet\")]"
                )));
            }
        };
        if slot.is_some() {
            return Err(meta.error(format!(
                "`{name}` is given twice; keep one (`{}` and `{}_name` are the same argument)",
                name.trim_end_matches("_name"),
                name.trim_end_matches("_name")
            )));
        }
        let value: Expr = meta.value()?.parse()?;
        let Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) = value
        else {
            let example = match &value {
                Expr::Path(p) => p.to_token_stream().to_string(),
                _ => "...".to_owned(),
            };
            return Err(Error::new_spanned(
                &value,
                format!("`{name}` takes a string literal: write {name} = \"{example}\""),
            ));
        };
        if text.value().trim().is_empty() {
            return Err(Error::new(text.span(), format!("`{name}` cannot be empty")));
        }
        *slot = Some(text);
        Ok(())
    }
}

fn variant(lit: &LitStr) -> Result<&'static str> {
    let name = lit.value();
    KINDS
        .iter()
        .find(|(yaml, _)| *yaml == name)
        .map(|(_, variant)| *variant)
        .ok_or_else(|| {
            Error::new(
                lit.span(),
                format!("unknown kind `{name}`: expected one of {}", kind_names()),
            )
        })
}

fn kind_names() -> String {
    KINDS
        .iter()
        .map(|(yaml, _)| *yaml)
        .collect::<Vec<_>>()
        .join(", ")
}
