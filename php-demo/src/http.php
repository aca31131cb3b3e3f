<?php
/*
 * Small HTTP helpers shared by the pages: escaping, JSON and redirect
 * responses, method and origin checks.
 */

declare(strict_types=1);

/** Escapes text for HTML element content and attribute values. */
function h($value): string
{
    return htmlspecialchars((string) $value, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

/** Sends a JSON response and ends the request. */
function json_response(int $status, array $data): never
{
    http_response_code($status);
    header('Content-Type: application/json; charset=utf-8');
    header('Cache-Control: no-store');
    echo json_encode($data, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
    exit;
}

/** 303 See Other to a local path, and ends the request. */
function redirect(string $path): never
{
    if ($path === '' || $path[0] !== '/' || str_starts_with($path, '//') || str_contains($path, '\\')) {
        $path = '/';
    }
    http_response_code(303);
    header('Location: ' . $path);
    exit;
}

/**
 * HTML forms of the demo carry a hidden "return" field: such a request gets a
 * redirect back to the page; fetch() and curl callers get JSON.
 */
function form_return_path(): ?string
{
    $return = $_POST['return'] ?? null;
    return is_string($return) ? $return : null;
}

/** Ends with the JSON answer, or with a redirect (and a flash message) for HTML forms. */
function respond(int $status, array $data, ?string $flash = null): never
{
    $return = form_return_path();
    if ($return !== null) {
        if ($flash !== null && session_status() === PHP_SESSION_ACTIVE) {
            flash_add($status < 400 ? 'success' : 'error', $flash);
        }
        redirect($return);
    }
    json_response($status, $data);
}

/** 405 unless the request uses one of these methods. */
function require_method(string ...$methods): void
{
    $method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
    if (!in_array($method, $methods, true)) {
        header('Allow: ' . implode(', ', $methods));
        json_response(405, ['ok' => false, 'error' => 'method not allowed, use ' . implode(' or ', $methods)]);
    }
}

/**
 * Refuses state-changing requests sent by a page of another origin (CSRF).
 * Browsers send Origin on POST; curl and test clients send none and pass.
 * The session cookie is also SameSite=Lax, which blocks most cross-site posts.
 */
function require_same_origin(): void
{
    $origin = $_SERVER['HTTP_ORIGIN'] ?? null;
    if ($origin === null) {
        return;
    }
    $parts = parse_url($origin);
    $host = ($parts['host'] ?? '') . (isset($parts['port']) ? ':' . $parts['port'] : '');
    if ($host === '' || strcasecmp($host, $_SERVER['HTTP_HOST'] ?? '') !== 0) {
        json_response(403, ['ok' => false, 'error' => 'cross-origin request refused']);
    }
}

/** Remembers a message for the next page view (stored in the session). */
function flash_add(string $type, string $text): void
{
    $_SESSION['flash'][] = ['type' => $type, 'text' => $text];
}

/** @return list<array{type:string, text:string}> and forgets them */
function flash_take(): array
{
    $messages = $_SESSION['flash'] ?? [];
    unset($_SESSION['flash']);
    return is_array($messages) ? $messages : [];
}

/** A request made on this machine, not one relayed by a local reverse proxy. */
function request_is_local(): bool
{
    return in_array($_SERVER['REMOTE_ADDR'] ?? '', ['127.0.0.1', '::1'], true)
        && !isset($_SERVER['HTTP_X_FORWARDED_FOR']) && !isset($_SERVER['HTTP_X_REAL_IP']);
}
