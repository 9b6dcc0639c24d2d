/*
 * plugins/slack/tls - OpenSSL for the Socket Mode link, loaded on first
 * use (dlopen of libcrypto.so.3 and libssl.so.3), not linked.
 *
 * Why: linking libssl into slack.so costs about 1.5 MB of resident memory
 * in every process that loads the plugin (relocating libssl against
 * libcrypto), while only Socket Mode needs TLS. HTTP mode never loads it.
 *
 * Lifetime: one handle per Socket Mode link owner (slk_socket); the table
 * it returns is immutable and valid until slk_tls_close(). dlopen counts
 * references, so several instances share one mapping.
 */
#ifndef IM_SLACK_TLS_H
#define IM_SLACK_TLS_H

#include <stddef.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

typedef struct slk_tls {
	void *crypto, *ssl; /* dlopen handles */
	/* libcrypto */
	__typeof__(&EVP_Digest) evp_digest;
	__typeof__(&EVP_sha1) evp_sha1;
	__typeof__(&ERR_get_error) err_get_error;
	__typeof__(&ERR_reason_error_string) err_reason_error_string;
	__typeof__(&ERR_clear_error) err_clear_error;
	__typeof__(&X509_verify_cert_error_string) x509_verify_cert_error_string;
	/* libssl */
	__typeof__(&TLS_client_method) tls_client_method;
	__typeof__(&SSL_CTX_new) ssl_ctx_new;
	__typeof__(&SSL_CTX_free) ssl_ctx_free;
	__typeof__(&SSL_CTX_ctrl) ssl_ctx_ctrl;
	__typeof__(&SSL_CTX_set_verify) ssl_ctx_set_verify;
	__typeof__(&SSL_CTX_set_default_verify_paths) ssl_ctx_set_default_verify_paths;
	__typeof__(&SSL_CTX_load_verify_locations) ssl_ctx_load_verify_locations;
	__typeof__(&SSL_new) ssl_new;
	__typeof__(&SSL_free) ssl_free;
	__typeof__(&SSL_set_fd) ssl_set_fd;
	__typeof__(&SSL_ctrl) ssl_ctrl;
	__typeof__(&SSL_set1_host) ssl_set1_host;
	__typeof__(&SSL_connect) ssl_connect;
	__typeof__(&SSL_get_verify_result) ssl_get_verify_result;
	__typeof__(&SSL_read) ssl_read;
	__typeof__(&SSL_write) ssl_write;
	__typeof__(&SSL_get_error) ssl_get_error;
} slk_tls;

/* Loads the libraries and every function; NULL with err when OpenSSL 3
 * is not installed. */
slk_tls *slk_tls_open(char *err, size_t errlen);
void slk_tls_close(slk_tls *t);

#endif
