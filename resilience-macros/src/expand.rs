//! Rewrites the annotated function in place: same attributes, visibility and
//! signature; the body runs inside the runtime's `call` (async fn) or
//! `call_blocking` (plain fn, which becomes an `async fn`).
//!
//! The steps: check the signature ([`Shape::of`]), register the call site
//! ([`site`]), add the checks that report a mistake at its token
//! ([`checks`]), then build the body: with recovery (`recovery.rs`) or
//! without ([`plain_body`]).

use crate::args::Args;
use crate::recovery::Recovery;
use crate::types::{borrows, contains_impl_trait};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Error, FnArg, ItemFn, Pat, Result, ReturnType, Signature, Type};

pub(crate) fn expand(args: Args, mut item: ItemFn, attribute: &str) -> Result<TokenStream> {
    let shape = Shape::of(&args, &item.sig, attribute)?;
    let recovery = Recovery::of(&args, &mut item.sig, attribute)?;
    let site = site(&args, &item.sig, &shape);
    let checks = checks(&args, &item.sig, &shape);
    let body = match &recovery {
        Some(recovery) => recovery.body(&args, &site, &checks, &shape, &item.block),
        None => plain_body(&args, &site, &checks, &shape, &item.block),
    };
    *item.block = syn::parse2(body)?;
    Ok(in_expanded_shape(item).into_token_stream())
}

/// The function as callers see it after expansion: a blocking `fn` becomes
/// an `async fn`. Also applied when expansion fails, so that the callers get
/// only the real error, not "`Result` is not a future" besides.
pub(crate) fn in_expanded_shape(mut item: ItemFn) -> ItemFn {
    if item.sig.asyncness.is_none() && item.sig.constness.is_none() {
        item.sig.asyncness = Some(syn::token::Async(item.sig.fn_token.span));
    }
    item
}

/// What the signature says about how the body runs.
pub(crate) struct Shape {
    /// The declared return type (`Result<T, E>` or an alias of one).
    pub ret: Type,
    /// A plain `fn`: runs on a worker thread.
    pub blocking: bool,
    pub on_pool: bool,
}

impl Shape {
    fn of(args: &Args, sig: &Signature, attribute: &str) -> Result<Shape> {
        if let Some(constness) = &sig.constness {
            return Err(Error::new(
                constness.span,
                format!(
                    "#[{attribute}] cannot wrap a `const fn`: bulkheads and timeouts act at run \
                     time; remove `const`"
                ),
            ));
        }
        let ret = result_type(&sig.output, &sig.ident, attribute)?.clone();
        let blocking = sig.asyncness.is_none();
        if let (Some(span), true) = (args.on_pool, blocking) {
            return Err(Error::new(
                span,
                "`on_pool` is for an `async fn`; a plain fn already runs on a worker thread: \
                 remove `on_pool`",
            ));
        }
        let shape = Shape {
            ret,
            blocking,
            on_pool: args.on_pool.is_some(),
        };
        if shape.moves() {
            shape.nothing_borrowed(sig, attribute)?;
        }
        Ok(shape)
    }

    /// The body runs on another thread, so nothing may be borrowed.
    pub fn moves(&self) -> bool {
        self.blocking || self.on_pool
    }

    fn nothing_borrowed(&self, sig: &Signature, attribute: &str) -> Result<()> {
        let (what, instead) = if self.blocking {
            ("a blocking", "make the function `async`")
        } else {
            (
                "an `on_pool`",
                "drop `on_pool` so it runs in the caller's task",
            )
        };
        if let Some(receiver) = sig.receiver() {
            return Err(Error::new(
                receiver.span(),
                format!(
                    "{what} #[{attribute}] function runs on a worker thread and cannot borrow \
                     `self`; move what it needs into owned arguments"
                ),
            ));
        }
        for input in &sig.inputs {
            if let FnArg::Typed(arg) = input {
                if borrows(&arg.ty) {
                    return Err(Error::new_spanned(
                        &arg.ty,
                        format!(
                            "this argument borrows, but the arguments of {what} #[{attribute}] \
                             function move to a worker thread: take an owned value (`String`, \
                             `PathBuf`, `Arc<T>`) or {instead}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The `static` that registers the call site with the runtime.
fn site(args: &Args, sig: &Signature, shape: &Shape) -> TokenStream {
    let rt = &args.runtime;
    let kind = syn::Ident::new(args.kind, Span::call_site());
    let dependency = &args.dependency;
    let operation = args.operation.as_ref().map_or_else(
        || {
            let name = sig.ident.to_string();
            name.trim_start_matches("r#").to_token_stream()
        },
        |op| op.to_token_stream(),
    );
    let flavor = match (shape.blocking, shape.on_pool) {
        (true, _) => quote!(Blocking),
        (false, true) => quote!(AsyncOnPool),
        (false, false) => quote!(Async),
    };
    let idempotent = args.idempotent.is_some();
    let has_fallback = args.fallback.is_some();
    quote! {
        static __RESILIENCE_SITE: #rt::CallSite = #rt::CallSite::new(
            #rt::Kind::#kind, #dependency, #operation, ::core::file!(), ::core::line!(), #rt::Flavor::#flavor,
            #idempotent, #has_fallback,
        );
        #rt::inventory::submit! { #rt::SiteRef(&__RESILIENCE_SITE) }
    }
}

/// Checks placed where the user wrote the token, before anything else can
/// report the same problem at the attribute: the return type's error type,
/// and each argument that moves to a worker thread.
fn checks(args: &Args, sig: &Signature, shape: &Shape) -> TokenStream {
    let rt = &args.runtime;
    let ret = &shape.ret;
    let result_check = (!contains_impl_trait(ret)).then(|| {
        let at_ret = respan(rt, ret.span());
        quote_spanned!(ret.span()=> #at_ret::assert_result::<#ret>();)
    });
    let arguments = sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(arg) if shape.moves() => match &*arg.pat {
            Pat::Ident(p) => {
                let name = &p.ident;
                Some(quote_spanned!(arg.ty.span()=> #rt::assert_blocking_argument(&#name);))
            }
            _ => None,
        },
        _ => None,
    });
    quote!(#result_check #(#arguments)*)
}

/// The body of a site with neither `idempotent` nor `fallback`.
fn plain_body(
    args: &Args,
    site: &TokenStream,
    checks: &TokenStream,
    shape: &Shape,
    block: &syn::Block,
) -> TokenStream {
    let rt = &args.runtime;
    let ret = &shape.ret;
    let record = record(args, ret);
    // Spanned at the return type, so a missing `From<ResilienceError>` is
    // reported there.
    let (entry, body) = if shape.blocking {
        ("call_blocking", quote!(move || -> #ret #block))
    } else if shape.on_pool {
        ("call_on_pool", async_body(ret, block))
    } else {
        // Built inside `call`, where it is pinned (see `call`'s comment).
        let body = async_body(ret, block);
        ("call", quote!(move || #body))
    };
    let call = at_ret(rt, ret, entry);
    let call = quote_spanned!(ret.span()=> #call(&__RESILIENCE_SITE, #record, #body).await);
    quote! {{
        #site
        #checks
        #call
    }}
}

/// The `Result<T, E>` the function returns, or an error at the right token.
/// Any path is taken: an alias (`std::io::Result<T>`, `AppResult<T>`) is a
/// `Result` too, and the trait check in [`checks`] rejects a path that is
/// not one, at the type.
fn result_type<'a>(output: &'a ReturnType, name: &syn::Ident, attribute: &str) -> Result<&'a Type> {
    let hint = format!(
        "#[{attribute}] needs a function that returns `Result<T, E>` where `E: From<ResilienceError>`, \
         so a rejection, timeout or open circuit can reach the caller"
    );
    match output {
        ReturnType::Default => Err(Error::new(
            name.span(),
            format!("{hint}; add a return type such as `-> Result<(), MyError>`"),
        )),
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) if p.qself.is_none() && !is_primitive(&p.path) => Ok(ty),
            _ => Err(Error::new(
                ty.span(),
                format!(
                    "{hint}; change this to `Result<{}, MyError>`",
                    ty.to_token_stream()
                ),
            )),
        },
    }
}

/// A primitive can be no alias of `Result`: refused at once, with the hint.
fn is_primitive(path: &syn::Path) -> bool {
    const PRIMITIVES: [&str; 17] = [
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64",
    ];
    path.get_ident()
        .is_some_and(|i| PRIMITIVES.contains(&i.to_string().as_str()))
}

/// Whether a body error counts as the dependency's failure: the site's
/// `record_if`, checked at its path, or every error.
pub(crate) fn record(args: &Args, ret: &Type) -> TokenStream {
    let rt = &args.runtime;
    match &args.record_if {
        None => quote!(#rt::AllErrors),
        Some(path) if contains_impl_trait(ret) => {
            quote_spanned!(path.span()=> #rt::RecordIf::new(#path))
        }
        Some(path) => quote_spanned!(path.span()=> #rt::record_if::<#ret>(#path)),
    }
}

/// The body as a future of the declared return type.
pub(crate) fn async_body(ret: &Type, block: &syn::Block) -> TokenStream {
    // A return edge of the declared type, so `?` and `return` in the body
    // infer as they would without the attribute.
    let fake_return = (!contains_impl_trait(ret)).then(|| {
        quote! {
            #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
            if false {
                let __resilience_fake_return: #ret = loop {};
                return __resilience_fake_return;
            }
        }
    });
    let stmts = &block.stmts;
    quote! {
        async move {
            #fake_return
            #(#stmts)*
        }
    }
}

/// The runtime's entry point `name`, spanned at the return type. Each call
/// of one (and its `.await`) is spanned there too: an unmet bound, such as an
/// error type without `From<ResilienceError>`, is then reported at the return
/// type, and rustc shows the same error at the same place once.
pub(crate) fn at_ret(rt: &TokenStream, ret: &Type, name: &str) -> TokenStream {
    let rt = respan(rt, ret.span());
    let name = syn::Ident::new(name, ret.span());
    quote!(#rt::#name)
}

/// `tokens` with every span set to `span`, so that an error about the whole
/// path (an unmet bound of the function it names) points there.
pub(crate) fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(&group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}
