# Builds mod_rgi and rgi-express, and installs them into the system Apache the Debian way.
#
#   make                  build (cargo build --release)
#   sudo make install     install the module, its a2enmod files and rgi-express
#   sudo a2enmod rgi && sudo apache2ctl configtest && sudo systemctl reload apache2
#   sudo make uninstall   remove them again (a2dismod rgi first)
#
# Variables: DESTDIR (a staging root, as for packaging), LIBEXECDIR (Apache's module directory,
# default `apxs -q LIBEXECDIR`), APACHE_CONFDIR (default /etc/apache2), BINDIR (default
# /usr/local/bin), RELEASE_DIR (where the built files are, default target/release), CARGO.

CARGO          ?= cargo
APXS           ?= apxs
LIBEXECDIR     ?= $(shell $(APXS) -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
APACHE_CONFDIR ?= /etc/apache2
BINDIR         ?= /usr/local/bin
RELEASE_DIR    ?= target/release
INSTALL        ?= install

MODULE  = $(RELEASE_DIR)/libmod_rgi.so
EXPRESS = $(RELEASE_DIR)/rgi-express
MODS    = $(DESTDIR)$(APACHE_CONFDIR)/mods-available

.PHONY: all build install uninstall

all: build

build:
	$(CARGO) build --release -p mod_rgi -p rgi-express

# Built only when missing: `sudo make install` must not rebuild as root (run `make` first).
$(MODULE) $(EXPRESS):
	$(CARGO) build --release -p mod_rgi -p rgi-express

install: $(MODULE) $(EXPRESS)
	$(INSTALL) -d $(DESTDIR)$(LIBEXECDIR) $(MODS) $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 644 $(MODULE) $(DESTDIR)$(LIBEXECDIR)/mod_rgi.so
	sed 's|^LoadModule rgi_module .*|LoadModule rgi_module $(LIBEXECDIR)/mod_rgi.so|' apache/rgi.load > $(MODS)/rgi.load
	chmod 644 $(MODS)/rgi.load
	$(INSTALL) -m 644 apache/rgi.conf $(MODS)/rgi.conf
	$(INSTALL) -m 755 $(EXPRESS) $(DESTDIR)$(BINDIR)/rgi-express
	@echo "installed; enable it with: a2enmod rgi && apache2ctl configtest && systemctl reload apache2"

uninstall:
	rm -f $(DESTDIR)$(LIBEXECDIR)/mod_rgi.so $(MODS)/rgi.load $(MODS)/rgi.conf $(DESTDIR)$(BINDIR)/rgi-express
