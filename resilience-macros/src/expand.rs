//! Rewrites the annotated function in place: same attributes, visibility and
//! signature; the body runs inside the runtime's `call` (async fn) or
//! `call_blocking` (plain fn, which becomes an `async fn`).

use crate::args::Args;
use crate::recovery::Recovery;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Error, FnArg, ItemFn, Pat, Result, ReturnType, Type};

pub(crate) fn expand(args: Args, mut item: ItemFn, attribute: &str) -> Result<TokenStream> {
    let sig = &item.sig;
    if let Some(constness) = &sig.constness {
        return Err(Error::new(
            constness.span,
            format!(
                "#[{attribute}] cannot wrap a `const fn`: bulkheads and timeouts act at run time; \
                 remove `const`"
            ),
        ));
    }
    let ret = result_type(&sig.output, &sig.ident, attribute)?.clone();
    let blocking = sig.asyncness.is_none();
    if let (Some(span), true) = (args.on_pool, blocking) {
        return Err(Error::new(
            span,
            "`on_pool` is for an `async fn`; a plain fn already runs on a worker thread: remove `on_pool`",
        ));
    }
    // Both run the body on another thread, so nothing may be borrowed.
    let moves = blocking || args.on_pool.is_some();
    if moves {
        if let Some(receiver) = sig.receiver() {
            let what = if blocking {
                "a blocking"
            } else {
                "an `on_pool`"
            };
            return Err(Error::new(
                receiver.span(),
                format!(
                    "{what} #[{attribute}] function runs on a worker thread and cannot borrow \
                     `self`; move what it needs into owned arguments"
                ),
            ));
        }
    }

    let recovery = Recovery::of(&args, &mut item.sig, attribute)?;
    let sig = &item.sig;
    let record = record(&args, &ret);
    let rt = quote!(::resilience_runtime::__private);
    let kind = syn::Ident::new(args.kind, Span::call_site());
    let dependency = &args.dependency;
    let operation = args.operation.map_or_else(
        || {
            let name = sig.ident.to_string();
            name.trim_start_matches("r#").to_token_stream()
        },
        |op| op.to_token_stream(),
    );
    let flavor = match (blocking, args.on_pool.is_some()) {
        (true, _) => quote!(Blocking),
        (false, true) => quote!(AsyncOnPool),
        (false, false) => quote!(Async),
    };
    let idempotent = args.idempotent.is_some();
    let has_fallback = args.fallback.is_some();
    let site = quote! {
        static __RESILIENCE_SITE: #rt::CallSite = #rt::CallSite::new(
            #rt::Kind::#kind, #dependency, #operation, ::core::file!(), ::core::line!(), #rt::Flavor::#flavor,
            #idempotent, #has_fallback,
        );
        #rt::inventory::submit! { #rt::SiteRef(&__RESILIENCE_SITE) }
    };
    let block = &item.block;
    // Checked where the user wrote the return type, before anything else can
    // report the same problem at the attribute.
    let result_check = (!contains_impl_trait(&ret)).then(
        || quote_spanned!(ret.span()=> ::resilience_runtime::__private::assert_result::<#ret>();),
    );

    // Each argument that moves to a worker thread is checked where it is declared.
    let checks: Vec<TokenStream> = if moves {
        sig.inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(arg) => match &*arg.pat {
                    Pat::Ident(p) => {
                        let name = &p.ident;
                        Some(quote_spanned!(arg.ty.span()=> #rt::assert_blocking_argument(&#name);))
                    }
                    _ => None,
                },
                FnArg::Receiver(_) => None,
            })
            .collect()
    } else {
        Vec::new()
    };

    let body = match &recovery {
        Some(recovery) => recovery.body(
            &record,
            &site,
            &result_check,
            &checks,
            &ret,
            block,
            blocking,
            args.on_pool.is_some(),
        ),
        None if blocking => {
            // Spanned at the return type, so a missing `From<ResilienceError>`
            // is reported there.
            let call = quote_spanned!(ret.span()=> ::resilience_runtime::__private::call_blocking);
            quote! {{
                #site
                #result_check
                #(#checks)*
                #call(&__RESILIENCE_SITE, #record, move || -> #ret #block).await
            }}
        }
        None => {
            let future = async_body(&ret, block);
            let call = if args.on_pool.is_some() {
                quote_spanned!(ret.span()=> ::resilience_runtime::__private::call_on_pool)
            } else {
                quote_spanned!(ret.span()=> ::resilience_runtime::__private::call)
            };
            quote! {{
                #site
                #result_check
                #(#checks)*
                #call(&__RESILIENCE_SITE, #record, #future).await
            }}
        }
    };

    if blocking {
        item.sig.asyncness = Some(syn::token::Async(item.sig.fn_token.span));
    }
    *item.block = syn::parse2(body)?;
    Ok(item.into_token_stream())
}

/// The `Result<T, E>` the function returns, or an error at the right token.
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
        ReturnType::Type(_, ty) => {
            let is_result = match &**ty {
                Type::Path(p) => {
                    p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Result")
                }
                _ => false,
            };
            if is_result {
                Ok(ty)
            } else {
                Err(Error::new(
                    ty.span(),
                    format!(
                        "{hint}; change this to `Result<{}, MyError>`",
                        ty.to_token_stream()
                    ),
                ))
            }
        }
    }
}

/// Whether a body error counts as the dependency's failure: the site's
/// `record_if`, checked at its path, or every error.
pub(crate) fn record(args: &Args, ret: &Type) -> TokenStream {
    let rt = quote!(::resilience_runtime::__private);
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

/// `impl Trait` cannot annotate a `let`, so such types get no fake return edge.
pub(crate) fn contains_impl_trait(ty: &Type) -> bool {
    ty.to_token_stream().to_string().contains("impl ")
}
