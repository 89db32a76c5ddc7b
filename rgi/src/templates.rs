//! HTML templates (feature `templates`), rendered by [MiniJinja](https://docs.rs/minijinja) —
//! Jinja2's syntax — with HTML auto-escaping on: a value is escaped unless the template marks it
//! `|safe`.
//!
//! ```
//! use rgi::templates::{Templates, context};
//!
//! let templates = Templates::new().with("hello.html", "<h1>Hello, {{ name }}!</h1>")?;
//! let response = templates.html("hello.html", context! { name => "<Ada>" })?;
//! assert_eq!(response.header("Content-Type"), Some("text/html; charset=utf-8"));
//! assert_eq!(templates.render("hello.html", context! { name => "<Ada>" })?, "<h1>Hello, &lt;Ada&gt;!</h1>");
//! # Ok::<(), rgi::templates::Error>(())
//! ```

use std::borrow::Cow;
use std::path::Path;

use serde::Serialize;

pub use minijinja::{self, Error, context};
use minijinja::{AutoEscape, Environment};

use crate::response::Response;

/// A set of named templates.
///
/// Templates come from strings (e.g. `include_str!`, compiled into the app) or from a
/// directory read when first used. Every template is HTML-escaped except those named `*.txt`.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

fn escaping(name: &str) -> AutoEscape {
    if name.ends_with(".txt") { AutoEscape::None } else { AutoEscape::Html }
}

impl Templates {
    /// An empty set.
    ///
    /// ```
    /// let templates = rgi::templates::Templates::new();
    /// assert!(templates.render("missing.html", ()).is_err());
    /// ```
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(escaping);
        Templates { env }
    }

    /// A set whose templates are the files under `dir`, named by their path below it (read when
    /// first rendered, then kept).
    ///
    /// ```no_run
    /// let templates = rgi::templates::Templates::from_dir("/srv/app/templates");
    /// # let _ = templates;
    /// ```
    pub fn from_dir(dir: impl AsRef<Path>) -> Self {
        let mut templates = Self::new();
        templates.env.set_loader(minijinja::path_loader(dir));
        templates
    }

    /// Adds template `name`.
    ///
    /// ```
    /// let templates = rgi::templates::Templates::new()
    ///     .with("base.html", "<title>{% block title %}{% endblock %}</title>")?
    ///     .with("page.html", "{% extends 'base.html' %}{% block title %}Page{% endblock %}")?;
    /// assert_eq!(templates.render("page.html", ())?, "<title>Page</title>");
    /// # Ok::<(), rgi::templates::Error>(())
    /// ```
    pub fn with(mut self, name: &'static str, source: impl Into<Cow<'static, str>>) -> Result<Self, Error> {
        match source.into() {
            Cow::Borrowed(s) => self.env.add_template(name, s)?,
            Cow::Owned(s) => self.env.add_template_owned(name, s)?,
        }
        Ok(self)
    }

    /// The MiniJinja environment, to add filters, functions or globals.
    ///
    /// ```
    /// let mut templates = rgi::templates::Templates::new().with("t.txt", "{{ shout('hi') }}")?;
    /// templates.environment_mut().add_function("shout", |s: String| s.to_uppercase());
    /// assert_eq!(templates.render("t.txt", ())?, "HI");
    /// # Ok::<(), rgi::templates::Error>(())
    /// ```
    pub fn environment_mut(&mut self) -> &mut Environment<'static> {
        &mut self.env
    }

    /// Renders template `name` with `values` (a [`context!`] or anything serde serialises).
    ///
    /// ```
    /// let t = rgi::templates::Templates::new().with("n.txt", "{{ n + 1 }}")?;
    /// assert_eq!(t.render("n.txt", rgi::templates::context! { n => 41 })?, "42");
    /// # Ok::<(), rgi::templates::Error>(())
    /// ```
    pub fn render(&self, name: &str, values: impl Serialize) -> Result<String, Error> {
        self.env.get_template(name)?.render(values)
    }

    /// Renders template `name` with `values` as a `200 OK` `text/html` response.
    ///
    /// ```
    /// let t = rgi::templates::Templates::new().with("p.html", "<p>{{ msg }}</p>")?;
    /// let r = t.html("p.html", rgi::templates::context! { msg => "hi" })?;
    /// assert_eq!(r.status(), 200);
    /// # Ok::<(), rgi::templates::Error>(())
    /// ```
    pub fn html<'r>(&self, name: &str, values: impl Serialize) -> Result<Response<'r>, Error> {
        Ok(Response::html(self.render(name, values)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_unless_marked_safe() {
        let t = Templates::new().with("a.html", "{{ v }}|{{ v|safe }}").unwrap().with("a.txt", "{{ v }}").unwrap();
        let v = context! { v => "<b>\"&'" };
        assert_eq!(t.render("a.html", &v).unwrap(), "&lt;b&gt;&quot;&amp;&#x27;|<b>\"&'");
        assert_eq!(t.render("a.txt", &v).unwrap(), "<b>\"&'");
    }

    #[test]
    fn templates_load_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pages")).unwrap();
        std::fs::write(dir.path().join("pages/x.html"), "<i>{{ x }}</i>").unwrap();
        let t = Templates::from_dir(dir.path());
        assert_eq!(t.render("pages/x.html", context! { x => "&" }).unwrap(), "<i>&amp;</i>");
        assert!(t.render("pages/missing.html", ()).is_err());
    }

    #[test]
    fn syntax_errors_are_reported_when_added() {
        let err = Templates::new().with("bad.html", "{% if %}").unwrap_err();
        assert!(err.to_string().contains("bad.html"), "{err}");
    }
}
