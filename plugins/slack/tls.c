/* OpenSSL loaded on demand for the Socket Mode link; see tls.h. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

typedef struct sym {
	const char *name;
	size_t off;
	int lib; /* 0 libcrypto, 1 libssl */
} sym;

#define C(field, name) {#name, offsetof(slk_tls, field), 0}
#define S(field, name) {#name, offsetof(slk_tls, field), 1}

static const sym syms[] = {
    C(evp_digest, EVP_Digest),
    C(evp_sha1, EVP_sha1),
    C(err_get_error, ERR_get_error),
    C(err_reason_error_string, ERR_reason_error_string),
    C(err_clear_error, ERR_clear_error),
    C(x509_verify_cert_error_string, X509_verify_cert_error_string),
    S(tls_client_method, TLS_client_method),
    S(ssl_ctx_new, SSL_CTX_new),
    S(ssl_ctx_free, SSL_CTX_free),
    S(ssl_ctx_ctrl, SSL_CTX_ctrl),
    S(ssl_ctx_set_verify, SSL_CTX_set_verify),
    S(ssl_ctx_set_default_verify_paths, SSL_CTX_set_default_verify_paths),
    S(ssl_ctx_load_verify_locations, SSL_CTX_load_verify_locations),
    S(ssl_new, SSL_new),
    S(ssl_free, SSL_free),
    S(ssl_set_fd, SSL_set_fd),
    S(ssl_ctrl, SSL_ctrl),
    S(ssl_set1_host, SSL_set1_host),
    S(ssl_connect, SSL_connect),
    S(ssl_get_verify_result, SSL_get_verify_result),
    S(ssl_read, SSL_read),
    S(ssl_write, SSL_write),
    S(ssl_get_error, SSL_get_error),
};

slk_tls *slk_tls_open(char *err, size_t errlen)
{
	slk_tls *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->crypto = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	t->ssl = t->crypto ? dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL)
			   : NULL;
	if (!t->ssl) {
		snprintf(err, errlen,
			 "Socket Mode needs OpenSSL 3 (libssl.so.3): %s",
			 dlerror());
		slk_tls_close(t);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *f = dlsym(syms[i].lib ? t->ssl : t->crypto, syms[i].name);
		if (!f) {
			snprintf(err, errlen, "OpenSSL lacks %s", syms[i].name);
			slk_tls_close(t);
			return NULL;
		}
		/* POSIX guarantees data and function pointers convert. */
		memcpy((char *)t + syms[i].off, &f, sizeof(f));
	}
	return t;
}

void slk_tls_close(slk_tls *t)
{
	if (!t)
		return;
	if (t->ssl)
		dlclose(t->ssl);
	if (t->crypto)
		dlclose(t->crypto);
	free(t);
}
