<?php
namespace App\Providers;

use Illuminate\Auth\GenericUser;
use Illuminate\Contracts\Auth\UserProvider;
use Illuminate\Support\Facades\Auth;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\ServiceProvider;

/** Users are id => name, no database: the guard and session are Laravel's own. */
class StaticUsers implements UserProvider
{
    public function retrieveById($identifier)
    {
        return ctype_digit((string) $identifier)
            ? new GenericUser(['id' => (int) $identifier, 'name' => "user$identifier",
                               'remember_token' => null, 'password' => ''])
            : null;
    }
    public function retrieveByToken($identifier, $token) { return null; }
    public function updateRememberToken($user, $token) {}
    public function retrieveByCredentials(array $credentials) { return null; }
    public function validateCredentials($user, array $credentials) { return false; }
}

class AppServiceProvider extends ServiceProvider
{
    public function boot()
    {
        Auth::provider('static', fn () => new StaticUsers());
        Route::middleware('web')->group(base_path('routes/web.php'));
    }
}
