<?php
// A minimal Symfony 5.4 application on Debian's Symfony components, for the
// tests of the symfony preset: RedisSessionHandler (Predis or phpredis), the
// firewall's ContextListener storing the token in the session, the session
// strategy on login, SwitchUserListener for impersonation, invalidate on logout.
// Served by `php -S 127.0.0.1:PORT public/index.php`.
require 'Symfony/Component/HttpFoundation/autoload.php';
require 'Symfony/Component/HttpKernel/autoload.php';
require 'Symfony/Component/EventDispatcher/autoload.php';
require 'Symfony/Component/Security/Core/autoload.php';
require 'Symfony/Component/Security/Http/autoload.php';
require 'Predis/autoload.php';
require __DIR__ . '/../src/User.php';

use App\User;
use App\Users;
use Symfony\Component\EventDispatcher\EventDispatcher;
use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\Response;
use Symfony\Component\HttpFoundation\Session\Session;
use Symfony\Component\HttpFoundation\Session\Storage\Handler\RedisSessionHandler;
use Symfony\Component\HttpFoundation\Session\Storage\NativeSessionStorage;
use Symfony\Component\HttpKernel\Event\RequestEvent;
use Symfony\Component\HttpKernel\Event\ResponseEvent;
use Symfony\Component\HttpKernel\HttpKernelInterface;
use Symfony\Component\Security\Core\Authentication\Token\Storage\TokenStorage;
use Symfony\Component\Security\Core\Authentication\Token\UsernamePasswordToken;
use Symfony\Component\Security\Core\Authorization\AccessDecisionManager;
use Symfony\Component\Security\Core\Authorization\Voter\RoleVoter;
use Symfony\Component\Security\Core\User\InMemoryUserChecker;
use Symfony\Component\Security\Http\Authenticator\Token\PostAuthenticationToken;
use Symfony\Component\Security\Http\Firewall\ContextListener;
use Symfony\Component\Security\Http\Firewall\SwitchUserListener;
use Symfony\Component\Security\Http\Session\SessionAuthenticationStrategy;

function redis_client()
{
    $port = (int) getenv('SF_REDIS_PORT');
    if (getenv('SF_REDIS_CLIENT') === 'phpredis') {
        $redis = new \Redis();
        $redis->connect('127.0.0.1', $port);
        return $redis;
    }
    return new Predis\Client(['host' => '127.0.0.1', 'port' => $port]);
}

$kernel = new class implements HttpKernelInterface {
    public function handle(Request $request, int $type = self::MAIN_REQUEST, bool $catch = true): Response
    {
        throw new LogicException('no sub-requests here');
    }
};

$request = Request::createFromGlobals();
$session = new Session(new NativeSessionStorage([], new RedisSessionHandler(redis_client())));
$request->setSession($session);
$request->attributes->set('_security_firewall_run', '_security_main');
$tokens = new TokenStorage();
$users = new Users();
$dispatcher = new EventDispatcher();
$context = new ContextListener($tokens, [$users], 'main', null, $dispatcher);
$context(new RequestEvent($kernel, $request, HttpKernelInterface::MAIN_REQUEST));

$path = parse_url($request->getRequestUri(), PHP_URL_PATH);
$response = null;
if ($path === '/login') {
    $user = $users->loadUserByIdentifier($request->request->get('id'));
    $token = $request->request->get('token') === 'post'
        ? new PostAuthenticationToken($user, 'main', $user->getRoles())
        : new UsernamePasswordToken($user, 'main', $user->getRoles());
    (new SessionAuthenticationStrategy(SessionAuthenticationStrategy::MIGRATE))
        ->onAuthentication($request, $token);
    $tokens->setToken($token);
} elseif ($path === '/switch') {  // ?_switch_user=<id> as the firewall's switch_user does it
    $switch = new SwitchUserListener($tokens, $users, new InMemoryUserChecker(), 'main',
        new AccessDecisionManager([new RoleVoter()]));
    $event = new RequestEvent($kernel, $request, HttpKernelInterface::MAIN_REQUEST);
    $switch($event);  // supports() then authenticate(), as the firewall calls it
} elseif ($path === '/logout') {
    $tokens->setToken(null);
    $session->invalidate();  // what the firewall's SessionLogoutListener does
} elseif ($path === '/visit') {
    $session->set('visits', $session->get('visits', 0) + 1);
}
$response = new JsonResponse(['user' => $tokens->getToken() ? $tokens->getToken()->getUser()->getId() : null]);
$context->onKernelResponse(new ResponseEvent($kernel, $request, HttpKernelInterface::MAIN_REQUEST, $response));
$session->save();
$response->send();
