<?php
namespace App;

use Symfony\Component\Security\Core\Exception\UserNotFoundException;
use Symfony\Component\Security\Core\User\UserInterface;
use Symfony\Component\Security\Core\User\UserProviderInterface;

/** An application's user entity: private properties, as Doctrine entities have. */
class User implements UserInterface
{
    private int $id;
    private string $email;
    private array $roles;

    public function __construct(int $id, string $email, array $roles)
    {
        $this->id = $id;
        $this->email = $email;
        $this->roles = $roles;
    }
    public function getId(): int { return $this->id; }
    public function getRoles(): array { return $this->roles; }
    public function getUserIdentifier(): string { return (string) $this->id; }
    public function getUsername(): string { return (string) $this->id; }
    public function getPassword(): ?string { return null; }
    public function getSalt(): ?string { return null; }
    public function eraseCredentials() {}
}

/** Users 1..999; user 1 is an admin allowed to impersonate. */
class Users implements UserProviderInterface
{
    public function loadUserByIdentifier(string $identifier): UserInterface
    {
        if (!ctype_digit($identifier) || (int) $identifier < 1 || (int) $identifier > 999) {
            throw new UserNotFoundException();
        }
        $roles = $identifier === '1' ? ['ROLE_USER', 'ROLE_ALLOWED_TO_SWITCH'] : ['ROLE_USER'];
        return new User((int) $identifier, "user$identifier@example.com", $roles);
    }
    public function loadUserByUsername(string $username): UserInterface
    {
        return $this->loadUserByIdentifier($username);
    }
    public function refreshUser(UserInterface $user): UserInterface
    {
        return $this->loadUserByIdentifier($user->getUserIdentifier());
    }
    public function supportsClass(string $class): bool { return $class === User::class; }
}
