"""Vectors written by the real frameworks' PHP classes (Debian's Laravel 8, Symfony 5.4).

``laravel_cookies`` encrypts session cookies with ``Illuminate\\Encryption\\Encrypter``
and ``CookieValuePrefix`` exactly as ``EncryptCookies`` does, and session
payloads as ``EncryptedStore`` does; ``symfony_tokens`` serializes the
security tokens of tests/apps/symfony's user. One php-cli run per call; the
answer comes back as JSON (bytes as base64).
"""

from __future__ import annotations

import base64
import functools
import json
import subprocess

from tests.harness import APPS

_LARAVEL = r"""
require 'Illuminate/autoload.php';
use Illuminate\Cookie\CookieValuePrefix;
use Illuminate\Encryption\Encrypter;
$in = json_decode(stream_get_contents(STDIN), true);
$out = [];
foreach ($in as $case) {
    $key = base64_decode(substr($case['key'], 7));
    $enc = new Encrypter($key, $case['cipher']);
    $plain = CookieValuePrefix::create($case['name'], $key) . $case['id'];
    $xsrf = CookieValuePrefix::create('XSRF-TOKEN', $key) . $case['id'];
    $out[] = [
        'cookie' => $enc->encrypt($plain, false),
        'other_name' => $enc->encrypt($xsrf, false),
        'session' => base64_encode(serialize($enc->encrypt(serialize($case['attributes'])))),
        'plain_session' => base64_encode(serialize(serialize($case['attributes']))),
    ];
}
echo json_encode($out);
"""

_SYMFONY = r"""
require 'Symfony/Component/Security/Core/autoload.php';
require 'Symfony/Component/Security/Http/autoload.php';
require $argv[1];
use App\User;
use Symfony\Component\Security\Core\Authentication\Token\SwitchUserToken;
use Symfony\Component\Security\Core\Authentication\Token\UsernamePasswordToken;
use Symfony\Component\Security\Http\Authenticator\Token\PostAuthenticationToken;
$admin = new User(1, 'admin@example.com', ['ROLE_ADMIN']);
$user = new User(7, 'seven@example.com', ['ROLE_USER']);
$upt = new UsernamePasswordToken($admin, 'main', $admin->getRoles());
echo json_encode(array_map('base64_encode', [
    'upt' => serialize($upt),
    'post' => serialize(new PostAuthenticationToken($user, 'main', $user->getRoles())),
    'switch' => serialize(new SwitchUserToken($user, 'main', ['ROLE_PREVIOUS_ADMIN'], $upt, '/x')),
]));
"""

CIPHERS = ("AES-128-CBC", "AES-256-CBC", "AES-128-GCM", "AES-256-GCM")


def _php(code: str, stdin: str = "", *args: str) -> dict | list:
    done = subprocess.run(["php", "-r", code, "--", *args], input=stdin, capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"php failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def laravel_cookies(cases: list[dict]) -> list[dict]:
    """Each case: key (base64:...), cipher, name, id, attributes (a JSON object)."""
    answers = _php(_LARAVEL, json.dumps(cases))
    for answer in answers:
        answer["session"] = base64.b64decode(answer["session"])
        answer["plain_session"] = base64.b64decode(answer["plain_session"])
    return answers


@functools.cache
def symfony_tokens() -> dict[str, bytes]:
    """Serialized UsernamePasswordToken (user 1), PostAuthenticationToken (user 7),
    SwitchUserToken (user 7 impersonated by user 1)."""
    tokens = _php(_SYMFONY, "", str(APPS / "symfony" / "src" / "User.php"))
    return {name: base64.b64decode(value) for name, value in tokens.items()}
