//! The expansion of a site with `idempotent` or `fallback`: the body becomes
//! a maker of fresh attempts, each with its own copy of the arguments, and a
//! failed call passes the originals and its error to the fallback.

use crate::args::Args;
use crate::expand::Shape;
use crate::types::contains_impl_trait;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Error, FnArg, Ident, Pat, Path, Result, Signature, Type};

pub(crate) struct Recovery {
    idempotent: bool,
    retry_if: Option<Path>,
    retry_after: Option<Path>,
    fallback: Option<Path>,
    /// The function takes `&self`.
    receiver: bool,
    /// The runtime's `__private` module.
    rt: TokenStream,
    arguments: Vec<Argument>,
}

struct Argument {
    name: Ident,
    mutable: bool,
    ty: Type,
    /// A `&mut` argument: lent to the one attempt, then to the fallback.
    exclusive: bool,
}

impl Recovery {
    /// `None` for a site with neither `idempotent` nor `fallback`: it keeps
    /// today's expansion and costs.
    /// Also drops `mut` from the signature's arguments: each attempt's own
    /// copy is the binding the body mutates.
    pub(crate) fn of(
        args: &Args,
        sig: &mut Signature,
        attribute: &str,
    ) -> Result<Option<Recovery>> {
        if args.idempotent.is_none() && args.fallback.is_none() {
            return Ok(None);
        }
        let mut receiver = false;
        let mut arguments = Vec::new();
        for input in &mut sig.inputs {
            match input {
                FnArg::Receiver(r) => {
                    let r = &*r;
                    if !matches!(r.kind, syn::ReceiverKind::Reference(_, _, None)) {
                        return Err(Error::new_spanned(
                            r,
                            format!(
                                "a #[{attribute}] method with `idempotent` or `fallback` takes `&self`: \
                                 each attempt and the fallback use `self` again, which `&mut self` and \
                                 `self` by value cannot offer"
                            ),
                        ));
                    }
                    receiver = true;
                }
                FnArg::Typed(arg) => match &mut *arg.pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                        let exclusive =
                            matches!(&*arg.ty, Type::Reference(r) if r.mutability.is_some());
                        if exclusive && args.idempotent.is_some() {
                            return Err(Error::new_spanned(
                                &arg.ty,
                                "an `idempotent` function cannot take a `&mut` argument: every retry \
                                 needs its own copy of each argument, and a `&mut` cannot be copied. \
                                 Pass a shared reference or an owned `Clone` value, or drop `idempotent` \
                                 (a `fallback` alone may take `&mut`)",
                            ));
                        }
                        arguments.push(Argument {
                            name: p.ident.clone(),
                            mutable: p.mutability.take().is_some(),
                            ty: (*arg.ty).clone(),
                            exclusive,
                        })
                    }
                    other => return Err(Error::new(
                        other.span(),
                        "with `idempotent` or `fallback`, each argument needs a plain name, as in \
                             `id: u64`: every attempt and the fallback get their own copy of it",
                    )),
                },
            }
        }
        Ok(Some(Recovery {
            idempotent: args.idempotent.is_some(),
            retry_if: args.retry_if.clone(),
            retry_after: args.retry_after.clone(),
            fallback: args.fallback.clone(),
            receiver,
            rt: args.runtime.clone(),
            arguments,
        }))
    }

    /// The new function body.
    pub(crate) fn body(
        &self,
        args: &Args,
        site: &TokenStream,
        checks: &TokenStream,
        shape: &Shape,
        block: &syn::Block,
    ) -> TokenStream {
        let rt = &self.rt;
        let (ret, blocking, on_pool) = (&shape.ret, shape.blocking, shape.on_pool);
        let record = crate::expand::record(args, ret);
        // Each attempt's own copies, checked where each argument is declared.
        let copies = self.arguments.iter().map(|a| {
            let name = &a.name;
            let mutable = a.mutable.then(|| quote!(mut));
            if a.exclusive {
                // Lent to the single attempt; the fallback gets it back after.
                quote!(let #mutable #name = &mut *#name;)
            } else {
                quote_spanned!(a.ty.span()=> let #mutable #name = #rt::Reuse::reuse(&#name);)
            }
        });
        let copies = quote!(#(#copies)*);
        let make = if blocking {
            quote!({ #copies move || -> #ret #block })
        } else {
            let future = crate::expand::async_body(ret, block);
            quote!({ #copies #future })
        };
        let at_ret = |name: &str| crate::expand::at_ret(rt, ret, name);
        let call = if self.idempotent && !blocking && !on_pool {
            // The first attempt as cheap as a site without retries; only a
            // failure goes on to the retry loop.
            let hooks = self.hooks(ret);
            let first = at_ret("call_first");
            let retrying = at_ret("call_retrying");
            let retry_call = quote_spanned!(ret.span()=> #retrying(
                &__RESILIENCE_SITE, #hooks, __resilience_record, __resilience_first, __resilience_make,
            ).await);
            let first_call = quote_spanned!(ret.span()=>
                #first(&__RESILIENCE_SITE, __resilience_record, &mut __resilience_make).await);
            quote! {{
                let mut __resilience_make = || #make;
                let __resilience_record = #record;
                match #first_call {
                    ::core::result::Result::Ok(__resilience_value) => {
                        ::core::result::Result::Ok(__resilience_value)
                    }
                    ::core::result::Result::Err(__resilience_first) => #retry_call
                }
            }}
        } else if self.idempotent {
            let hooks = self.hooks(ret);
            let entry = at_ret(if blocking {
                "call_blocking_retrying"
            } else {
                "call_on_pool_retrying"
            });
            quote_spanned!(ret.span()=> #entry(&__RESILIENCE_SITE, #hooks, #record, || #make).await)
        } else {
            let entry = at_ret(match (blocking, on_pool) {
                (true, _) => "call_blocking",
                (false, true) => "call_on_pool",
                (false, false) => "call",
            });
            // `call` builds its body itself, where it is pinned.
            let make = if blocking || on_pool {
                make
            } else {
                quote!(|| #make)
            };
            quote_spanned!(ret.span()=> #entry(&__RESILIENCE_SITE, #record, #make).await)
        };
        let typed = (!contains_impl_trait(ret)).then(|| quote!(: #ret));
        let finish = match &self.fallback {
            None => quote!(__resilience_result),
            Some(path) => {
                let names = self.arguments.iter().map(|a| &a.name);
                let receiver = self.receiver.then(|| quote!(self,));
                let args = quote!(#receiver #(#names,)* __resilience_error);
                // Spanned at the path, so a wrong signature is reported there.
                let run = if blocking {
                    // Called through the checked pointer, so a mistake is reported once.
                    let (check, function) = match self.blocking_fallback_check(path, ret) {
                        Some(check) => (check, quote!(__resilience_fallback_fn)),
                        None => (TokenStream::new(), quote!(#path)),
                    };
                    quote_spanned!(path.span()=> {
                        #check
                        #rt::fallback_blocking(&__RESILIENCE_SITE, move || #function(#args)).await
                    })
                } else {
                    quote_spanned!(path.span()=> #rt::fallback(&__RESILIENCE_SITE, #path(#args)).await)
                };
                // A fallback of the wrong type is reported at the path too.
                let run = match &typed {
                    Some(typed) => quote_spanned!(path.span()=> {
                        let __resilience_fallback #typed = #run;
                        __resilience_fallback
                    }),
                    None => run,
                };
                quote! {
                    match __resilience_result {
                        ::core::result::Result::Err(__resilience_error) => #run,
                        __resilience_ok => __resilience_ok,
                    }
                }
            }
        };
        // At the return type too: the binding's type is the entry's future's
        // output, and an unmet bound of the entry would be reported here again.
        let bind = quote_spanned!(ret.span()=> let __resilience_result #typed = #call;);
        quote! {{
            #site
            #checks
            #bind
            #finish
        }}
    }

    /// A blocking fallback's whole signature, checked at its path, so that a
    /// wrong argument or return type is reported there.
    fn blocking_fallback_check(&self, path: &Path, ret: &Type) -> Option<TokenStream> {
        if contains_impl_trait(ret) || self.arguments.iter().any(|a| contains_impl_trait(&a.ty)) {
            return None;
        }
        let rt = &self.rt;
        let types = self.arguments.iter().map(|a| &a.ty);
        Some(quote_spanned!(path.span()=>
            #[allow(clippy::type_complexity)]
            let __resilience_fallback_fn: fn(#(#types,)* <#ret as #rt::ResultParts>::Err) -> #ret = #path;
        ))
    }

    /// The site's `retry_if` and `retry_after`, each checked at its path.
    fn hooks(&self, ret: &Type) -> TokenStream {
        let rt = &self.rt;
        let mut hooks = if contains_impl_trait(ret) {
            quote!(#rt::Hooks::new())
        } else {
            quote!(#rt::hooks::<#ret>())
        };
        if let Some(path) = &self.retry_if {
            hooks = quote_spanned!(path.span()=> #hooks.retry_if(#path));
        }
        if let Some(path) = &self.retry_after {
            hooks = quote_spanned!(path.span()=> #hooks.retry_after(#path));
        }
        hooks
    }
}
