<?php
/*
 * The demo's user table. A real application would use its database; these
 * four accounts are enough to show per-user delivery.
 * Passwords equal the user names (bcrypt hashes below).
 */

declare(strict_types=1);

/** @return array<string, array{id:int, name:string, display:string, roles:list<string>, hash:string}> */
function demo_users(): array
{
    return [
        'alice' => ['id' => 1, 'name' => 'alice', 'display' => 'Alice', 'roles' => ['admin', 'user'],
            'hash' => '$2y$10$tahErhqe5xOdQgjhXp9RnOUmpW9CGETKf3tx9Y3SIfK.Vf5xIMXcW'],
        'bob' => ['id' => 2, 'name' => 'bob', 'display' => 'Bob', 'roles' => ['user'],
            'hash' => '$2y$10$7VNyIgAWHdb69ZBw03EYTeCIk2Fdo6qLifOD.hG0KUNZ2y4XPWirm'],
        'carol' => ['id' => 3, 'name' => 'carol', 'display' => 'Carol', 'roles' => ['editor', 'user'],
            'hash' => '$2y$10$JpznUaaMLGMXyJXdivCmceGAneCTEM61vU/e5PuX0XxyL/xssZ5Xe'],
        'dave' => ['id' => 42, 'name' => 'dave', 'display' => 'Dave', 'roles' => ['user'],
            'hash' => '$2y$10$VuPdQLtAtf7bXAZjPWdBWe7IuwDsFnMc33OkeIljVAf0.vVhHONlK'],
    ];
}

function demo_user_by_name(string $name): ?array
{
    return demo_users()[$name] ?? null;
}

function demo_user_by_id(int $id): ?array
{
    foreach (demo_users() as $user) {
        if ($user['id'] === $id) {
            return $user;
        }
    }
    return null;
}

/** Checks a password; takes the same time for unknown names (no user enumeration). */
function demo_authenticate(string $name, string $password): ?array
{
    $user = demo_user_by_name($name);
    $hash = $user['hash'] ?? '$2y$10$tahErhqe5xOdQgjhXp9RnOUmpW9CGETKf3tx9Y3SIfK.Vf5xIMXcX';
    return password_verify($password, $hash) && $user !== null ? $user : null;
}

/** What the session keeps about a user (never the password hash). */
function demo_session_user(array $user): array
{
    return ['id' => $user['id'], 'name' => $user['name'], 'roles' => $user['roles']];
}
