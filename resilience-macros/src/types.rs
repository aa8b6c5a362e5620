//! Questions about a type, answered by walking its syntax tree rather than
//! its text (a text search for `impl ` would match `my_impl::Pet`).

use syn::visit::{self, Visit};
use syn::{Lifetime, Type, TypeImplTrait, TypeReference};

/// Whether `ty` holds an `impl Trait`, which cannot annotate a `let`: such
/// types get no inference edge and no return-type check.
pub(crate) fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_type_impl_trait(&mut self, _: &TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// Whether `ty` borrows anything that is not `'static`: a reference, or a
/// type with a lifetime parameter.
pub(crate) fn borrows(ty: &Type) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_type_reference(&mut self, r: &TypeReference) {
            if r.lifetime.as_ref().is_none_or(|l| l.ident != "static") {
                self.0 = true;
            }
            visit::visit_type_reference(self, r);
        }
        fn visit_lifetime(&mut self, l: &Lifetime) {
            if l.ident != "static" {
                self.0 = true;
            }
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(text: &str) -> Type {
        syn::parse_str(text).unwrap()
    }

    #[test]
    fn impl_trait_is_found_in_the_tree_not_the_text() {
        assert!(contains_impl_trait(&ty(
            "Result<impl Iterator<Item = u8>, E>"
        )));
        assert!(!contains_impl_trait(&ty("Result<my_impl::Pet, E>")));
        assert!(!contains_impl_trait(&ty("Result<Pet, impl_errors::E>")));
    }

    #[test]
    fn borrowed_types_are_found_and_static_ones_pass() {
        for borrowed in [
            "&str",
            "&mut Vec<u8>",
            "Cow<'a, str>",
            "Vec<&'_ str>",
            "Box<dyn Fn() + 'a>",
        ] {
            assert!(borrows(&ty(borrowed)), "{borrowed}");
        }
        for owned in [
            "String",
            "&'static str",
            "Arc<Path>",
            "Cow<'static, str>",
            "PathBuf",
        ] {
            assert!(!borrows(&ty(owned)), "{owned}");
        }
    }
}
