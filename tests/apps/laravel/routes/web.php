<?php
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Auth;
use Illuminate\Support\Facades\Route;

Route::get('/visit', function (Request $request) {
    $request->session()->put('visits', $request->session()->get('visits', 0) + 1);
    return ['user' => Auth::id()];
});

Route::post('/login', function (Request $request) {
    $user = Auth::getProvider()->retrieveById($request->input('id'));
    abort_unless($user, 422);
    Auth::login($user);  // regenerates the session id, deleting the old key
    return ['user' => Auth::id()];
});

Route::post('/logout', function (Request $request) {
    Auth::logout();
    $request->session()->invalidate();
    $request->session()->regenerateToken();
    return ['user' => null];
});
